"""The end-of-session summary, rendered from the report data (pure: report in, lines out)."""

from __future__ import annotations

from typing import Any

__all__ = ('summary_lines',)


def _pct(value: float | None) -> str:
    return '-' if value is None else f'{value * 100:.1f}%'


def _gate_line(g: dict[str, Any]) -> str:
    mark = 'PASS' if g['passed'] else 'FAIL'
    return f'    gate {g["name"]}: {mark} (actual {g["actual"]}, threshold {g["threshold"]})' + (
        f' {g["detail"]}' if g.get('detail') else ''
    )


def summary_lines(report: dict[str, Any], max_links: int = 50) -> list[str]:
    """Per suite: cases passed/failed/errored, pass rates, score averages, tokens and cost, slowest case, gates,
    and the links of the failed cases; then the session totals."""
    lines: list[str] = []
    cases_by_suite: dict[str, list[dict[str, Any]]] = {}
    for c in report['cases']:
        cases_by_suite.setdefault(c['suite'], []).append(c)
    for suite in report['suites']:
        st = suite['stats']
        usage = st['usage']
        lines.append(
            f'{suite["suite"]}: {st["passed"]} passed, {st["failed"]} failed, {st["error"]} error'
            + (f', {st["skipped"]} skipped' if st['skipped'] else '')
            + f' | pass rate {_pct(st["pass_rate"])} | assertions {_pct(st["assertion_pass_rate"])}'
        )
        if st['score_averages']:
            scores = ', '.join(f'{k} {v:.3f}' for k, v in st['score_averages'].items())
            lines.append(f'    scores: {scores}')
        lines.append(
            f'    tokens {usage["input_tokens"]:,} in / {usage["output_tokens"]:,} out, {usage["requests"]} requests, '
            f'cost ${usage["cost_usd"]:.6f} (judge ${st["judge_usage"]["cost_usd"]:.6f})'
            + (
                f', replayed ${st["replayed_cost_usd"]:.6f} (spent ${st["spent_cost_usd"]:.6f})'
                if st['replayed_cost_usd']
                else ''
            )
        )
        if st['slowest']:
            lines.append(f'    slowest: {st["slowest"]["case"]} {st["slowest"]["duration_s"]:.3f}s')
        for flaky in st['flaky']:
            lines.append(f'    flaky: {flaky["case"]} passed {flaky["passed"]}/{flaky["runs"]}')
        lines.extend(_gate_line(g) for g in suite['gates'])
        failed = [c for c in cases_by_suite.get(suite['suite'], []) if c['status'] in ('failed', 'error')]
        for c in failed[:max_links]:
            where = c['trace_url'] or (f'trace id {c["trace_id"]}' if c['trace_id'] else 'no trace')
            lines.append(f'    {c["status"].upper()} {c["case"]}: {where}')
        if len(failed) > max_links:
            lines.append(f'    … and {len(failed) - max_links} more failed cases (see the report)')
    session = report['session']
    st = session['stats']
    lines.append(
        f'session: {st["passed"]} passed, {st["failed"]} failed, {st["error"]} error | '
        f'tokens {st["total_tokens"]:,} | cost ${st["usage"]["cost_usd"]:.6f}'
    )
    lines.extend(_gate_line(g) for g in session['gates'])
    return lines
