"""The HTML report: one self-contained file per run (default `.evaltrace/report.html`) to drill into failed cases.

It shows the suites with their gates and the cases (filterable to failures, sortable by cost, tokens and duration);
opening a case draws the waterfall of its trace from the local trace store, with each span's attributes, model
messages, tool calls, exceptions, tokens and cost.

Everything is inline (CSS and JS from `_html_assets/`, data as JSON): the file loads nothing from the network.
To stay quick with thousands of cases, the case list is one small JSON block, and each case's details and spans sit
in their own `<script type="application/json">` block, parsed only when the case is opened. Everything that comes
from the report or the store is scrubbed of secrets (`SecretScrubber`) before it is written.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic_core import to_json

from ._files import write_text_atomic
from ._scrub import SecretScrubber
from ._spool import StoreError, read_spool
from ._usage import usage_of_span

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ('HTML_VERSION', 'build_html', 'case_anchor', 'load_spans', 'write_html_report', 'write_html_safely')

HTML_VERSION = 1
MAX_VALUE_CHARS = 4000
"""A rendered attribute value longer than this (as JSON) is cut: whole tool schemas repeat on every model request."""
MAX_STACKTRACE_CHARS = 8000
# Attributes that only repeat what the page shows elsewhere: metrics summed on every ancestor, and an agent run's
# whole conversation (its model requests below carry the same messages). They are still in the store.
_DROPPED_ATTRIBUTES = frozenset({'logfire.metrics', 'pydantic_ai.all_messages'})


def case_anchor(nodeid: str) -> str:
    """The anchor of a case in the HTML report; the same as the one trace links use (`_session._anchor`)."""
    return 'case-' + uuid.uuid5(uuid.NAMESPACE_URL, nodeid).hex[:16]


# --- spans from the store ------------------------------------------------------------------------------------------


def _cut(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """`value` unless its JSON is longer than `limit`; then its JSON text, cut, with how much was left out."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else to_json(value, fallback=str).decode()
    if len(text) <= limit:
        return value
    return f'{text[:limit]}… [{len(text) - limit:,} more characters]'


def load_spans(
    store_path: Path, trace_ids: Iterable[str], *, run_id: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The spans of each trace as compact dicts in start order, ready for the page's waterfall.

    They were scrubbed when they were spooled (see `_spool.span_to_line`), with the same patterns, and are not
    scrubbed again: that doubled the cost of the page for large runs.

    The spans of run `run_id` are read from the spool it just wrote (no DuckDB at all, at the end of a run); the
    traces not found there come from the DuckDB store.

    Keys: `id`, `p` (index of the parent in the list, -1 for a root), `n` (message, else span name), `sn` (span
    name), `s` / `d` (start offset from the trace's first span and duration, in ms), `k` (kind), `l` (level),
    `a` (attributes), `x` (exception: type, message, stacktrace), `u` (own usage of a model request:
    input tokens, output tokens, cost).

    Raises:
        StoreError: The store is needed but missing, corrupt or locked.
    """
    wanted = {t for t in trace_ids if t}
    if not wanted:
        return {}
    by_trace: dict[str, list[tuple[Any, ...]]] = {}
    if run_id:
        for record in read_spool(store_path, run_id):
            trace_id = str(record.get('trace_id'))
            if trace_id in wanted:
                by_trace.setdefault(trace_id, []).append(_spool_row(record))
        for rows in by_trace.values():
            rows.sort(key=lambda row: (row[5], str(row[1])))
    missing = sorted(wanted - by_trace.keys())
    if missing and (store_path.exists() or not by_trace):
        for row in _store_rows(store_path, missing):
            by_trace.setdefault(str(row[0]), []).append(row)
    return {trace_id: _compact(trace_rows) for trace_id, trace_rows in by_trace.items()}


def _spool_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    # The same fields, in the same order, as `_store_rows` selects them.
    start = dt.datetime.fromisoformat(str(record.get('start_timestamp')))
    start_us = (start - _EPOCH) // dt.timedelta(microseconds=1)
    attributes = record.get('attributes')
    if not isinstance(attributes, dict):
        attributes = {}
    return (
        record.get('trace_id'), record.get('span_id'), record.get('parent_span_id'), record.get('span_name'),
        record.get('message'), start_us, record.get('duration'), record.get('level'), record.get('kind'),
        cast('dict[str, Any]', attributes), record.get('exception_type'),
        record.get('exception_message'), record.get('exception_stacktrace'),
    )  # fmt: skip


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _store_rows(store_path: Path, trace_ids: list[str]) -> list[tuple[Any, ...]]:
    from ._store import open_store  # DuckDB only when the spool does not have the spans

    con = open_store(store_path)
    try:
        return con.execute(
            'SELECT trace_id, span_id, parent_span_id, span_name, message, epoch_us(start_timestamp), duration, '
            'CAST(level AS VARCHAR), kind, CAST(attributes AS VARCHAR), exception_type, exception_message, '
            'exception_stacktrace FROM records WHERE list_contains(?, trace_id) '
            'ORDER BY trace_id, start_timestamp, span_id',
            [trace_ids],
        ).fetchall()
    finally:
        con.close()


def _compact(rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    t0 = min(int(row[5]) for row in rows)
    index = {str(row[1]): i for i, row in enumerate(rows)}
    spans: list[dict[str, Any]] = []
    for row in rows:
        raw = row[9]  # JSON text from DuckDB, already decoded from the spool
        decoded: Any = cast('dict[str, Any]', raw) if isinstance(raw, dict) else json.loads(raw) if raw else {}
        attributes = cast('dict[str, Any]', decoded) if isinstance(decoded, dict) else {}
        usage = usage_of_span(attributes)
        shown = {k: v for k, v in attributes.items() if k not in _DROPPED_ATTRIBUTES}
        span: dict[str, Any] = {
            'id': row[1],
            'p': index.get(str(row[2]), -1) if row[2] else -1,
            'n': str(row[4] or row[3] or ''),
            'sn': str(row[3] or ''),
            's': round((int(row[5]) - t0) / 1000, 3),
            'd': round(float(row[6] or 0.0) * 1000, 3),
            'k': row[8] or 'span',
            'l': row[7] or 'info',
            'a': {k: _cut(v) for k, v in shown.items()},
        }
        if row[10] or row[11]:
            span['x'] = [str(row[10] or ''), str(row[11] or ''), str(row[12] or '')[-MAX_STACKTRACE_CHARS:]]
        if usage is not None:
            span['u'] = [usage.input_tokens, usage.output_tokens, usage.cost_usd]
        spans.append(span)
    return spans


# --- the page ------------------------------------------------------------------------------------------------------


def _usage(case: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = case.get(key)
    return cast('dict[str, Any]', value) if isinstance(value, dict) else {}


def _case_row(i: int, case: Mapping[str, Any]) -> dict[str, Any]:
    """The list-level fields of a case (what the table shows and sorts by)."""
    task, judge = _usage(case, 'task_usage'), _usage(case, 'judge_usage')
    tokens_in = int(task.get('input_tokens', 0)) + int(judge.get('input_tokens', 0))
    tokens_out = int(task.get('output_tokens', 0)) + int(judge.get('output_tokens', 0))
    failures = cast('list[Any]', case.get('failures') or [])
    nodeid = str(case.get('nodeid', ''))
    return {
        'i': i,
        'a': case_anchor(nodeid),
        'nodeid': nodeid,
        'suite': case.get('suite'),
        'case': case.get('case'),
        'status': case.get('status'),
        'dur': case.get('duration_s') or 0.0,
        'cost': float(task.get('cost_usd', 0.0)) + float(judge.get('cost_usd', 0.0)),
        'tin': tokens_in,
        'tout': tokens_out,
        'tok': tokens_in + tokens_out,
        'fail': _cut(str(failures[0]), 300) if failures else '',
        'nfail': len(failures),
        'trace_id': case.get('trace_id'),
        'replayed': bool(case.get('replayed')),
    }


_DETAIL_KEYS = (
    'assertions', 'scores', 'labels', 'evaluator_failures', 'failures', 'error', 'inputs', 'expected_output',
    'output', 'metadata', 'task_usage', 'judge_usage', 'task_duration_s', 'trace_url', 'span_id', 'repeat',
    'repeats',
)  # fmt: skip


_USER_DATA_KEYS = ('inputs', 'expected_output', 'output', 'metadata')


def _case_detail(case: Mapping[str, Any], scrubber: SecretScrubber | None) -> dict[str, Any]:
    detail = {key: case.get(key) for key in _DETAIL_KEYS if key in case}
    if scrubber is not None:
        detail = _scrub_strings(detail, scrubber)
    for key in _USER_DATA_KEYS:
        if key in detail:
            # The task's own data: also redact values under sensitive keys (`password`, `api_key`, ...).
            detail[key] = _cut(detail[key] if scrubber is None else scrubber.scrub_value(detail[key]), 20_000)
    return detail


def _scrub_strings(value: Any, scrubber: SecretScrubber) -> Any:
    """Secrets removed from every string; keys are left alone (the report's own `session` is no secret)."""
    if isinstance(value, str):
        return scrubber.scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub_strings(v, scrubber) for k, v in cast('dict[str, Any]', value).items()}
    if isinstance(value, list | tuple):
        return [_scrub_strings(v, scrubber) for v in cast('Sequence[Any]', value)]
    return value


SHARED_REF = '__et_ref__'
MIN_SHARED_CHARS = 200


def _share_repeated_values(traces: Sequence[list[dict[str, Any]]]) -> list[Any]:
    """Move attribute values that occur more than once (tool schemas, system prompts, ...) to one shared table.

    Each long value that repeats is kept once; the spans' attributes then hold `{SHARED_REF: index}` in its place
    (the page resolves them when it opens a case). This keeps a large run's page several times smaller. The spans
    are changed in place; returns the table.
    """
    counts: dict[str, int] = {}
    found: list[tuple[dict[str, Any], str, str]] = []  # (attributes, name, key): each long value once
    for spans in traces:
        for span in spans:
            attributes = cast('dict[str, Any]', span['a'])
            for name, value in attributes.items():
                if isinstance(value, dict | list | str) and len(text := _key(value)) >= MIN_SHARED_CHARS:
                    counts[text] = counts.get(text, 0) + 1
                    found.append((attributes, name, text))
    table: list[Any] = []
    index: dict[str, int] = {}
    for attributes, name, text in found:
        if counts[text] > 1:
            if text not in index:
                index[text] = len(table)
                table.append(attributes[name])
            attributes[name] = {SHARED_REF: index[text]}
    return table


def _key(value: Any) -> str:
    # Prefixed, so that a string never shares an entry with a list or dict whose JSON it happens to equal.
    if isinstance(value, str):
        return 's' + value
    return 'j' + to_json(value, fallback=str).decode()


def _script_json(data: Any) -> str:
    """JSON safe inside a `<script>` element: no `</script>`, `<!--` or `]]>` can appear in it."""
    text = to_json(data, fallback=str).decode()
    return text.replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026')


def _asset(name: str) -> str:
    return resources.files('evaltrace').joinpath('_html_assets', name).read_text(encoding='utf-8')


def build_html(
    report: Mapping[str, Any],
    *,
    spans: Mapping[str, list[dict[str, Any]]] | None = None,
    scrubber: SecretScrubber | None = None,
    store_note: str | None = None,
    cases_scrubbed: bool = False,
) -> str:
    """The report page as one HTML string.

    Args:
        report: The JSON report (as `final_report` or `read_report` give it).
        spans: The compact spans of each trace id (see `load_spans`); cases without spans show no waterfall.
        scrubber: Removes secrets from everything taken from the report (spans were scrubbed when they were spooled).
        store_note: Shown instead of a waterfall when there are no spans at all (e.g. the store is off).
        cases_scrubbed: The cases' data was scrubbed already, with the same patterns (a run's own report: see
            `_scrub.scrub_case_result`), so their details are not scrubbed again.
    """
    scrubber = scrubber or SecretScrubber()
    spans = spans or {}
    cases = cast('list[Mapping[str, Any]]', report.get('cases') or [])
    rows = [_case_row(i, c) for i, c in enumerate(cases)]
    keep = ('run_id', 'started_at', 'finished_at', 'complete', 'session', 'suites', 'shard', 'baseline', 'interrupted')
    meta = {key: report[key] for key in keep if key in report}
    for key in ('rescored_from', 'rescore_note'):
        if key in report:
            meta[key] = report[key]
    head = {'version': HTML_VERSION, 'meta': meta, 'cases': rows, 'store_note': store_note}
    blocks: list[str] = [
        f'<script type="application/json" id="et-data">{_script_json(_scrub_strings(head, scrubber))}</script>'
    ]
    traces = [spans.get(str(case.get('trace_id')), []) for case in cases]
    shared = _share_repeated_values(traces)
    blocks.append(f'<script type="application/json" id="et-shared">{_script_json(shared)}</script>')
    for i, case in enumerate(cases):
        payload = {'detail': _case_detail(case, None if cases_scrubbed else scrubber), 'spans': traces[i]}
        blocks.append(f'<script type="application/json" id="et-c{i}">{_script_json(payload)}</script>')
    title = f'evaltrace report {report.get("run_id", "")}'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network, ever: the policy forbids every fetch, font and image that is not inline.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f'<title>{_html_text(title)}</title><style>{_asset("report.css")}</style></head>\n'
        '<body><div id="app"><p class="loading">Loading the report…</p></div>\n'
        + '\n'.join(blocks)
        + f'\n<script>{_asset("report.js")}</script>\n</body></html>\n'
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
) -> None:
    """Write the HTML report of `report` to `path` (atomically), with the waterfalls from the store at `store_path`.

    A missing or unreadable store does not stop the page: it is written without waterfalls and says why.
    `cases_scrubbed` is for a run's own report, whose cases were scrubbed with `scrub_patterns` (see `build_html`).

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
            trace_ids = (str(c.get('trace_id') or '') for c in cases)
            spans = load_spans(store_path, trace_ids, run_id=str(report.get('run_id') or '') or None)
        except StoreError as e:
            note = f'No waterfalls: {e}'
    page = build_html(report, spans=spans, scrubber=scrubber, store_note=note, cases_scrubbed=cases_scrubbed)
    write_text_atomic(path, page)


def write_html_safely(settings: Settings, report: Mapping[str, Any], warnings: list[str]) -> None:
    """Write the session's HTML report; any failure becomes one line in `warnings`, never an error of the run."""
    if settings.html is None:
        return
    try:
        write_html_report(
            settings.html,
            report,
            store_path=settings.store,
            scrub_patterns=settings.scrub_patterns,
            cases_scrubbed=True,  # every case result was scrubbed before it was reported (see _run.run_cases)
        )
    except Exception as e:  # the JSON report is already written; the page is a convenience on top of it
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        warnings.append(f'HTML report not written to {settings.html}: {type(e).__name__}: {first}')
