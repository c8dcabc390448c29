"""The HTML report: one self-contained file per run (default `.evaltrace/report.html`), to see the run's verdict and
drill into failed cases.

It opens on the run's verdict and its gates, the suite runs with their analyses, and the cases (filterable to
failures, sortable by cost, tokens, duration and scores); opening a case that did not pass (any case, with the
`html_traces` setting `all`) draws the waterfall of its trace from the local trace store, in tree order, with each
span's attributes, model messages, tool calls, exceptions, tokens and cost. Views draw the trends of the last runs (`report.history`), score distributions, cost and duration per case, flaky
cases, and the comparison with the baseline (`views.html_views`).

Everything is inline (CSS and JS from `_html_assets/`, data as JSON): the file loads nothing from the network.
To stay small and quick with thousands of cases, the case list is one plain JSON block, and the cases' details and
spans are gzipped in chunks of `CHUNK_CASES` cases (base64 in `<script type="application/gzip+base64">` blocks),
inflated by the browser's `DecompressionStream` only when one of their cases is opened. Long attribute values that
repeat within a chunk (tool schemas, system prompts) are kept once per chunk. Everything that comes from
the report or the store is scrubbed of secrets (`SecretScrubber`) before it is written.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic_core import to_json

from ..safety.files import write_text_atomic
from ..safety.scrub import SecretScrubber
from ..store.files import StoreError
from ..trace.links import case_anchor
from .html_spans import cut, load_spans, share_repeated_values
from .html_views import case_deltas, verdict_view
from .summary import CHANGED

if TYPE_CHECKING:
    from ..report.final import Report
    from ..settings.values import HtmlTraces, Settings

__all__ = (
    'CHUNK_CASES',
    'HTML_VERSION',
    'build_html',
    'case_anchor',
    'read_page_data',
    'write_html_report',
    'write_html_safely',
)

HTML_VERSION = 2
CHUNK_CASES = 64
"""Cases whose details share one gzipped block: enough for gzip to find what they repeat, few enough to open fast."""
_ASSETS = ('charts.js', 'report.js')


# --- the page ------------------------------------------------------------------------------------------------------


def _usage(case: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = case.get(key)
    return cast('dict[str, Any]', value) if isinstance(value, dict) else {}


class _Columns:
    """The names of the assertions and scores over all cases, in first-seen order: each row holds its values by
    position, so 10,000 rows do not repeat the names."""

    def __init__(self) -> None:
        self.assertions: dict[str, int] = {}
        self.scores: dict[str, int] = {}

    def assertion_marks(self, case: Mapping[str, Any]) -> str:
        """`1` held, `0` did not, `.` not evaluated, by position in `assertions`; trailing dots left out."""
        values = cast('Mapping[str, Any]', case.get('assertions') or {})
        marks = ['.'] * len(self.assertions)
        for name, result in values.items():
            position = self.assertions.setdefault(name, len(self.assertions))
            marks += ['.'] * (position + 1 - len(marks))
            marks[position] = '1' if cast('Mapping[str, Any]', result or {}).get('value') is True else '0'
        return ''.join(marks).rstrip('.')

    def score_values(self, case: Mapping[str, Any]) -> list[float | None]:
        """Each numeric score by position in `scores` (None where the case has none); trailing Nones left out."""
        values = cast('Mapping[str, Any]', case.get('scores') or {})
        out: list[float | None] = [None] * len(self.scores)
        for name, result in values.items():
            value = cast('Mapping[str, Any]', result or {}).get('value')
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            position = self.scores.setdefault(name, len(self.scores))
            out += [None] * (position + 1 - len(out))
            out[position] = round(float(value), 6)
        while out and out[-1] is None:
            out.pop()
        return out


def _case_row(i: int, case: Mapping[str, Any], columns: _Columns) -> dict[str, Any]:
    """The list-level fields of a case (what the table shows, filters and sorts by)."""
    task, judge = _usage(case, 'task_usage'), _usage(case, 'judge_usage')
    tokens_in = int(task.get('input_tokens', 0)) + int(judge.get('input_tokens', 0))
    tokens_out = int(task.get('output_tokens', 0)) + int(judge.get('output_tokens', 0))
    failures = cast('list[Any]', case.get('failures') or [])
    nodeid = str(case.get('nodeid', ''))
    row: dict[str, Any] = {
        'i': i,
        'a': case_anchor(nodeid),
        'nodeid': nodeid,
        'suite': case.get('suite'),
        'case': case.get('case'),
        'status': case.get('status'),
        'dur': round(float(case.get('duration_s') or 0.0), 4),
        'cost': float(task.get('cost_usd', 0.0)) + float(judge.get('cost_usd', 0.0)),
        'tok': tokens_in + tokens_out,
        'fail': cut(str(failures[0]), 300) if failures else '',
        'nfail': len(failures),
        'as': columns.assertion_marks(case),
        'sc': columns.score_values(case),
    }
    if case.get('replayed'):
        row['replayed'] = True
    return row


_DETAIL_KEYS = (
    'assertions', 'scores', 'labels', 'evaluator_failures', 'failures', 'error', 'inputs', 'expected_output',
    'output', 'metadata', 'task_usage', 'judge_usage', 'task_duration_s', 'trace_url', 'trace_id', 'span_id',
    'repeat', 'repeats', 'metrics', 'attributes',
)  # fmt: skip


_USER_DATA_KEYS = ('inputs', 'expected_output', 'output', 'metadata', 'attributes')


def _keeps_trace(case: Mapping[str, Any], html_traces: HtmlTraces) -> bool:
    """Whether the page holds the waterfall of `case` under the `html_traces` setting (pure).

    By default only the cases that did not pass: drawing every passing case's waterfall was most of what the page cost
    a large run (reading its spans back, ordering and packing them), for traces the local store keeps anyway.
    """
    return html_traces == 'all' or case.get('status') != 'passed'


def _case_detail(case: Mapping[str, Any], scrubber: SecretScrubber | None) -> dict[str, Any]:
    detail = {key: case.get(key) for key in _DETAIL_KEYS if key in case}
    if scrubber is not None:
        detail = _scrub_strings(detail, scrubber)
    for key in _USER_DATA_KEYS:
        if key in detail:
            # The task's own data: also redact values under sensitive keys (`password`, `api_key`, ...).
            detail[key] = cut(detail[key] if scrubber is None else scrubber.scrub_value(detail[key]), 20_000)
    return detail


# Values that are the user's own names (node ids, suite and case names, anchors), kept as `scrub_case_result` keeps
# them: the free-text patterns would take `test_auth.py::test_session_notes` for a key and its value.
_NAME_KEYS = frozenset(
    {'nodeid', 'suite', 'case', 'name', 'a', 'expected', 'missing', 'cancelled', 'not_started', 'source_case_name'}
)


def _scrub_strings(value: Any, scrubber: SecretScrubber) -> Any:
    """Secrets removed from every string but names; keys are left alone (the report's own `session` is no secret)."""
    if isinstance(value, str):
        return scrubber.scrub_text(value)
    if isinstance(value, dict):
        return {
            k: v if k in _NAME_KEYS else _scrub_strings(v, scrubber) for k, v in cast('dict[str, Any]', value).items()
        }
    if isinstance(value, list | tuple):
        return [_scrub_strings(v, scrubber) for v in cast('Sequence[Any]', value)]
    return value


def _script_json(data: Any) -> str:
    """JSON safe inside a `<script>` element: no `</script>`, `<!--` or `]]>` can appear in it."""
    text = to_json(data, fallback=str).decode()
    return text.replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026')


def _asset(name: str) -> str:
    return resources.files('evaltrace.views').joinpath('html_assets', name).read_text(encoding='utf-8')


def _gzip_block(block_id: str, data: Any) -> str:
    """`data` as gzipped JSON in base64: a block the page inflates when it needs it (see report.js `inflate`)."""
    raw = to_json(data, fallback=str)
    text = base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode('ascii')
    return f'<script type="application/gzip+base64" id="{block_id}">{text}</script>'


_BLOCK = re.compile(r'<script type="application/(json|gzip\+base64)" id="([^"]+)">(.*?)</script>', re.S)


def read_page_data(page: str) -> dict[str, Any]:
    """The data blocks of a page written by `build_html`, decoded, by block id (for tests and tools)."""
    blocks: dict[str, Any] = {}
    for kind, block_id, text in _BLOCK.findall(page):
        raw = gzip.decompress(base64.b64decode(text)) if kind != 'json' else text.encode()
        blocks[block_id] = json.loads(raw)
    return blocks


def build_html(
    report: Mapping[str, Any],
    *,
    spans: Mapping[str, list[dict[str, Any]]] | None = None,
    scrubber: SecretScrubber | None = None,
    store_note: str | None = None,
    cases_scrubbed: bool = False,
    history: Sequence[Mapping[str, Any]] = (),
    baseline: Mapping[str, Any] | None = None,
    typed: Report | None = None,
    html_traces: HtmlTraces = 'all',
    show_options: str = '',
) -> str:
    """The report page as one HTML string.

    Args:
        report: The JSON report (as `final_report` or `read_report` give it).
        spans: The compact spans of each trace id (see `load_spans`); cases without spans show no waterfall.
        scrubber: Removes secrets from everything taken from the report (spans were scrubbed when they were spooled).
        store_note: Shown instead of a waterfall when there are no spans at all (e.g. the store is off).
        cases_scrubbed: The cases' data was scrubbed already, with the same patterns (a run's own report: see
            `safety.scrub.scrub_case_result`), so their details are not scrubbed again.
        history: The last runs' figures, oldest first, this run's included (see `report.history.record_run`): the trends.
        baseline: The baseline the run was compared with (see `report.baseline.load_baseline`): per-case deltas.
        typed: `report` as the typed `Report` it was written from, when the caller has it (not read again).
        html_traces: The setting: a case whose waterfall it leaves out is marked `left_out` (the page says
            how to see its trace).
        show_options: What the page's `evaltrace show` commands need after the command's name (see
            `settings.values.show_options`).
    """
    scrubber = scrubber or SecretScrubber()
    spans = spans or {}
    cases = cast('list[Mapping[str, Any]]', report.get('cases') or [])
    columns = _Columns()
    rows = [_case_row(i, c, columns) for i, c in enumerate(cases)]
    keep = ('run_id', 'started_at', 'finished_at', 'complete', 'session', 'suites', 'shard', 'baseline', 'interrupted')
    meta = {key: report[key] for key in keep if key in report}
    for key in ('rescored_from', 'rescore_note', 'merge', 'cancelled', 'not_started'):
        if key in report:
            meta[key] = report[key]
    meta['verdict'] = verdict_view(typed or report) if 'session' in report else None
    meta['deltas'] = case_deltas(baseline, report) if baseline and 'baseline' in report else None
    meta['history'] = list(history)
    meta['changed_label'] = CHANGED.capitalize()  # worded as every other output words it
    meta['show_options'] = show_options
    head = {
        'version': HTML_VERSION,
        'meta': meta,
        'assertions': list(columns.assertions),
        'scores': list(columns.scores),
        'chunk': CHUNK_CASES,
        'cases': [] if cases_scrubbed else rows,
        'store_note': store_note,
    }
    head = _scrub_strings(head, scrubber)
    # A run's own rows hold names, figures and the first line of its failures, scrubbed with the case: not again.
    head['cases'] = rows if cases_scrubbed else head['cases']
    blocks: list[str] = [f'<script type="application/json" id="et-data">{_script_json(head)}</script>']
    for start in range(0, len(cases), CHUNK_CASES):
        chunk_cases = cases[start : start + CHUNK_CASES]
        kept = [_keeps_trace(case, html_traces) for case in chunk_cases]
        traces = [
            spans.get(str(case.get('trace_id')), []) if k else [] for case, k in zip(chunk_cases, kept, strict=True)
        ]
        # Each chunk has its own table of repeated values, so opening a case never inflates more than its chunk.
        table = share_repeated_values(traces)
        details = [_case_detail(case, None if cases_scrubbed else scrubber) for case in chunk_cases]
        entries = [
            {'detail': d, 'spans': t, **({} if k else {'left_out': True})}
            for d, t, k in zip(details, traces, kept, strict=True)
        ]
        payload = {'shared': table, 'cases': entries}
        blocks.append(_gzip_block(f'et-z{start // CHUNK_CASES}', payload))
    title = f'evaltrace report {report.get("run_id", "")}'
    scripts = '\n'.join(f'<script>{_asset(name)}</script>' for name in _ASSETS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network, ever: the policy forbids every fetch, font and image that is not inline (`blob:` is the
        # page's own inflated data, read through `Response`).
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src blob: data:\">"
        f'<title>{_html_text(title)}</title><style>{_asset("report.css")}</style></head>\n'
        '<body><div id="app"><p class="loading">Loading the report…</p></div>\n'
        + '\n'.join(blocks)
        + f'\n{scripts}\n</body></html>\n'
    )


def _html_text(text: str) -> str:
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def write_html_report(
    path: Path,
    report: Mapping[str, Any],
    *,
    store_path: Path | None,
    scrub_patterns: Sequence[str] = (),
    cases_scrubbed: bool = False,
    history: Sequence[Mapping[str, Any]] = (),
    baseline: Mapping[str, Any] | None = None,
    typed: Report | None = None,
    html_traces: HtmlTraces = 'all',
    show_options: str = '',
) -> None:
    """Write the HTML report of `report` to `path` (atomically), with the waterfalls from the store at `store_path`.

    A missing or unreadable store does not stop the page: it is written without waterfalls and says why. Only the
    spans of the cases whose waterfalls `html_traces` keeps are read. `cases_scrubbed` is for a run's own report,
    whose cases were scrubbed with `scrub_patterns`; `history`, `baseline`, `typed` and `show_options` are as in
    `build_html`.

    Raises:
        OSError: The file could not be written.
        ValueError: A scrubbing pattern is not a valid regular expression.
    """
    scrubber = SecretScrubber(scrub_patterns)
    cases = cast('list[Mapping[str, Any]]', report.get('cases') or [])
    spans: dict[str, list[dict[str, Any]]] = {}
    note: str | None = None
    if store_path is None:
        note = 'The local trace store is off (evaltrace_store = off): no waterfalls.'
    else:
        try:
            trace_ids = (str(c.get('trace_id') or '') for c in cases if _keeps_trace(c, html_traces))
            spans = load_spans(store_path, trace_ids, run_id=str(report.get('run_id') or '') or None)
        except StoreError as e:
            note = f'No waterfalls: {e}'
    page = build_html(
        report,
        spans=spans,
        scrubber=scrubber,
        store_note=note,
        cases_scrubbed=cases_scrubbed,
        history=history,
        baseline=baseline,
        typed=typed,
        html_traces=html_traces,
        show_options=show_options,
    )
    write_text_atomic(path, page)


def write_html_safely(
    settings: Settings, data: Mapping[str, Any], warnings: list[str], typed: Report | None = None
) -> None:
    """Record the run in the history and write the session's HTML report of `data` (the report's JSON; `typed` as
    in `build_html`); any failure becomes one line in `warnings`, never an error of the run."""
    if settings.html is None:
        return
    from ..report.baseline import BaselineError, load_baseline
    from ..report.history import HISTORY_FILE, read_history, record_run
    from ..settings.values import show_options as show_options_of

    history_path = settings.report.parent / HISTORY_FILE
    try:
        history = record_run(history_path, data, settings.retention)
    except OSError as e:  # the trends are a picture on top of the report: without them the page is still written
        warnings.append(f'run history not written to {history_path}: {e}')
        history = read_history(history_path)
    try:
        baseline = load_baseline(settings.baseline)
    except BaselineError:
        baseline = None  # finalize_report has said why already
    try:
        write_html_report(
            settings.html,
            data,
            store_path=settings.store,
            scrub_patterns=settings.scrub_patterns,
            cases_scrubbed=True,  # every case result was scrubbed before it was reported (see _run.run_case)
            history=history,
            baseline=baseline,
            typed=typed,
            html_traces=settings.html_traces,
            show_options=show_options_of(settings),
        )
    except Exception as e:  # the JSON report is already written; the page is a convenience on top of it
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        warnings.append(f'HTML report not written to {settings.html}: {type(e).__name__}: {first}')
