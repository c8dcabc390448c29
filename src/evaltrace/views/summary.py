"""The end-of-session summary, rendered from the typed report (pure: report in, lines out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from ..judge.compare import Delta
from ..report.decide import report_verdict
from ..report.final import BaselineReport, Report, as_report
from ..results.case import CaseResult, GateResult
from ..results.usage import Usage

__all__ = ('CHANGED', 'MAX_LINE', 'MAX_LISTED', 'baseline_lines', 'cost_note', 'replay_note', 'summary_lines')

MAX_LINE = 110
"""The comparison with the baseline is wrapped to lines of at most this many characters (a name longer than a line
is never cut: it gets a line of its own)."""
MAX_LISTED = 10
"""Cases added, removed or changed listed in the terminal, the rest counted (all are in the report and the HTML)."""


def _pct(value: float | None) -> str:
    return '-' if value is None else f'{value * 100:.1f}%'


def _gate_line(g: GateResult) -> str:
    mark = 'PASS' if g.passed else 'FAIL'
    return f'    gate {g.name}: {mark} (actual {g.actual}, threshold {g.threshold})' + (
        f' {g.detail}' if g.detail else ''
    )


def analysis_line(analysis: dict[str, Any]) -> str:
    """One line for a report evaluator's analysis (pydantic-evals' `ReportAnalysis`, dumped)."""
    title = analysis.get('title') or analysis.get('type', 'analysis')
    kind = analysis.get('type')
    if kind == 'confusion_matrix':
        labels: list[str] = analysis.get('class_labels') or []
        matrix: list[list[int]] = analysis.get('matrix') or []
        total = sum(sum(row) for row in matrix)
        diagonal = sum(matrix[i][i] for i in range(min(len(matrix), len(labels))))
        return f'{title}: {len(labels)} classes ({", ".join(labels)}), {diagonal} of {total} on the diagonal'
    if kind == 'scalar':
        unit = f' {analysis["unit"]}' if analysis.get('unit') else ''
        return f'{title}: {analysis.get("value")}{unit}'
    if kind == 'precision_recall':
        found: list[dict[str, Any]] = analysis.get('curves') or []
        curves = ', '.join(
            f'{c.get("name")} AUC {c["auc"]:.3f}' if c.get('auc') is not None else str(c.get('name')) for c in found
        )
        return f'{title}: {curves}'
    if kind == 'table':
        return f'{title}: table of {len(analysis.get("rows") or [])} rows, columns {", ".join(analysis.get("columns") or [])}'
    return f'{title} ({kind})'


def _when(stamp: str) -> str:
    # `2026-11-29T04:10:00Z` -> `2026-11-29 04:10 UTC`
    return stamp[:16].replace('T', ' ') + ' UTC' if len(stamp) >= 16 else stamp


def replay_note(cases: Sequence[CaseResult]) -> str | None:
    """One line saying that a suite's cases replayed recorded answers: how many, from where, recorded when (None
    when no case replayed). A replayed answer is not a live one: the summaries must not let it pass for one."""
    replayed = [c for c in cases if c.replayed]
    if not replayed:
        return None
    folders = sorted({str(PurePath(c.cassette).parent) for c in replayed if c.cassette})
    where = f' from {folders[0]}/' if len(folders) == 1 else f' from {len(folders)} cassette folders' if folders else ''
    dates = sorted(str(c.recorded_at) for c in replayed if c.recorded_at)
    when = ''
    if dates:
        first, last = _when(dates[0]), _when(dates[-1])
        when = f', recorded {first}' if first == last else f', recorded {first} to {last}'
    return f'replayed {len(replayed)} of {len(cases)} cases{where}{when}'


def cost_note(usage: Usage) -> str:
    """What a cost leaves out or stands for (`Usage.cost_note`), in brackets after it ('' when nothing)."""
    note = usage.cost_note
    return f' ({note})' if note else ''


def summary_lines(report: Report | Mapping[str, Any], max_links: int = 50) -> list[str]:
    """Per suite: cases passed/failed/errored, pass rates, score averages, tokens and cost, slowest case, gates,
    and the links of the failed cases; then the session totals."""
    run = as_report(report)
    lines: list[str] = []
    for suite in run.suites:
        st = suite.stats
        usage = st.usage
        cases = run.suite_cases(suite.suite)
        lines.append(
            f'{suite.suite}: {st.passed} passed, {st.failed} failed, {st.error} error'
            + (f', {st.skipped} skipped' if st.skipped else '')
            + f' | pass rate {_pct(st.pass_rate)} | assertions {_pct(st.assertion_pass_rate)}'
        )
        if st.score_averages:
            scores = ', '.join(f'{k} {v:.3f}' for k, v in st.score_averages.items())
            lines.append(f'    scores: {scores}')
        spent = usage.cost_usd - st.replayed_cost_usd
        lines.append(
            f'    tokens {usage.input_tokens:,} in / {usage.output_tokens:,} out, {usage.requests} requests, '
            f'cost ${usage.cost_usd:.6f} (judge ${st.judge_usage.cost_usd:.6f})'
            + (f', replayed ${st.replayed_cost_usd:.6f} (spent ${spent:.6f})' if st.replayed_cost_usd else '')
            + cost_note(usage)
        )
        note = replay_note(cases)
        if note:
            lines.append(f'    {note}')
        if st.slowest:
            lines.append(f'    slowest: {st.slowest["case"]} {st.slowest["duration_s"]:.3f}s')
        for flaky in st.flaky:
            lines.append(
                f'    flaky: {flaky["case"]} passed {flaky["passed"]}/{flaky["runs"]} '
                f'(pass ratio {flaky["pass_ratio"] * 100:.0f}%)'
            )
        lines.extend(_gate_line(g) for g in suite.gates)
        experiment: Mapping[str, Any] = suite.info.experiment or {}
        analyses: list[dict[str, Any]] = experiment.get('analyses') or []
        lines.extend(f'    analysis {analysis_line(a)}' for a in analyses)
        if experiment.get('url'):
            lines.append(f'    experiment: {experiment["url"]}')
        if experiment.get('table'):
            lines.extend(f'    {line}' for line in str(experiment['table']).rstrip().splitlines())
        failed = [c for c in cases if c.status in ('failed', 'error')]
        for c in failed[:max_links]:
            where = c.trace_url or (f'trace id {c.trace_id}' if c.trace_id else 'no trace')
            lines.append(f'    {c.status.upper()} {c.case}: {where}')
        if len(failed) > max_links:
            lines.append(f'    … and {len(failed) - max_links} more failed cases (see the report)')
    st = run.session.stats
    lines.append(
        f'session: {st.passed} passed, {st.failed} failed, {st.error} error | '
        f'tokens {st.usage.total_tokens:,} | cost ${st.usage.cost_usd:.6f}' + cost_note(st.usage)
    )
    lines.extend(_gate_line(g) for g in run.session.gates)
    lines.extend(baseline_lines(run.baseline, max_links))
    if run.shard_count > 1:
        lines.append(f'shard {run.shard["index"]}/{run.shard_count}: {len(run.expected)} case(s) of this shard')
    if (left_out := run.extra.get('rescore_left_out')) is not None:
        lines.append(
            f'rescore: left out {left_out} case(s) that run {run.extra.get("rescored_from")} did not run: it was '
            f'shard {run.shard["index"]}/{run.shard_count}, and another shard ran them'
        )
    if not run.complete:
        problems = run.merge_problems or ['interrupted, or some expected cases did not run']
        lines.extend(f'INCOMPLETE: {p}' for p in problems)
        missing = run.missing
        if missing:
            shown = ', '.join(missing[:5]) + (f' and {len(missing) - 5} more' if len(missing) > 5 else '')
            lines.append(f'INCOMPLETE: {len(missing)} case(s) with no result: {shown}')
    verdict = report_verdict(run)
    lines.append(f'verdict: {verdict.word} (exit status {verdict.exit_status}): {verdict.reason}')
    return lines


def _value(value: float | None, rate: bool) -> str:
    # None (nothing to measure) shows as '-', as the rates of a suite's line do.
    return _pct(value) if rate else '-' if value is None else f'{value:.3f}'


def _delta_text(d: Delta, rate: bool) -> str:
    text = f'{_value(d.baseline, rate)} -> {_value(d.current, rate)}'
    if d.delta is None:  # one side measured nothing
        return text
    return text + (f' ({d.delta * 100:+.1f} pts)' if rate else f' ({d.delta:+.3f})')


CHANGED = 'changed (inputs or expected output differ), not compared'
"""What the cases a baseline lists as changed are, as every output words it (the HTML report's copy: report.js)."""

_LISTS = (
    ('newly_failing', 'newly failing'),
    ('newly_fixed', 'newly fixed'),
    ('added', 'added'),
    ('removed', 'removed'),
    ('changed', CHANGED),
)
_BOUNDED = frozenset({'added', 'removed', 'changed'})


def _pack(items: list[str], indent: str, sep: str, first: str = '') -> list[str]:
    """`items` joined by `sep` into lines of at most `MAX_LINE` characters: the first line starts with `first` (when
    given), the others with `indent` (pure)."""
    pieces = [item + sep.rstrip() for item in items[:-1]] + items[-1:]
    lines: list[str] = []
    line = first
    for piece in pieces:
        joined = f'{line} {piece}' if line else indent + piece
        if line and len(joined) > MAX_LINE:
            lines.append(line)
            joined = indent + piece
        line = joined
    lines.append(line)
    return lines


def baseline_lines(baseline: BaselineReport | Mapping[str, Any] | None, max_links: int = 50) -> list[str]:
    """The comparison with the baseline: per-suite deltas, then the cases that changed status, wrapped to
    `MAX_LINE`; the lists of added, removed and changed cases are cut at `MAX_LISTED`, with a count of the rest."""
    if not baseline:
        return []
    found = baseline if isinstance(baseline, BaselineReport) else BaselineReport.from_json(baseline)
    if found.error is not None:
        return [f'baseline {found.path}: {found.error}']
    comparison = found.comparison
    if comparison is None:
        return [f'baseline {found.path}: not found, nothing compared']
    lines = [f'baseline {found.path} (run {comparison.run_id}, {comparison.created_at}):']
    for suite in comparison.suites:
        if not suite.in_baseline:
            lines.append(f'    {suite.suite}: not in the baseline')
            continue
        s = suite.comparison
        parts = [
            f'pass rate {_delta_text(s.pass_rate, True)}',
            f'assertions {_delta_text(s.assertion_pass_rate, True)}',
        ]
        parts += [f'{k} {_delta_text(v, True)}' for k, v in s.evaluator_pass_rates.items()]
        parts += [f'score {k} {_delta_text(v, False)}' for k, v in s.score_averages.items()]
        cost = s.cost_usd
        pct = '' if cost.delta_pct is None else f', {cost.delta_pct:+.1f}%'
        parts.append(f'cost ${cost.baseline:.6f} -> ${cost.current:.6f} ({cost.delta:+.6f}{pct})')
        lines.append(f'    {suite.suite} ({s.compared} compared):')
        lines.extend(_pack(parts, ' ' * 8, '; '))
    session = comparison.session
    lists: list[tuple[str, str, tuple[str, ...]]] = [(key, label, getattr(session, key)) for key, label in _LISTS]
    lines.append('    ' + ', '.join(f'{len(names)} {key.replace("_", " ")}' for key, _, names in lists))
    for key, label, names in lists:
        if not names:
            continue
        limit = min(MAX_LISTED, max_links) if key in _BOUNDED else max_links
        items = [*names[:limit]] + ([f'… and {len(names) - limit} more'] if len(names) > limit else [])
        lines.extend(_pack(items, ' ' * 8, ', ', first=f'    {label} ({len(names)}):'))
    return lines
