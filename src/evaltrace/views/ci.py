"""CI-native outputs from the typed report: a markdown summary, GitHub Actions annotations and the job step summary (pure,
except `write_ci_outputs`, which writes files).

On GitHub Actions (`GITHUB_ACTIONS=true`) the markdown summary is appended to `$GITHUB_STEP_SUMMARY` and one
`::error` workflow command is printed per failing case, carrying its trace link. `--evaltrace-markdown PATH` writes
the same markdown anywhere, for example to post it as a pull-request comment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..judge.compare import Delta
from ..report.decide import failing_cases, report_verdict, ungated_failures
from ..report.final import BaselineReport, Report, as_report
from .summary import CHANGED, analysis_line, cost_note, replay_note

__all__ = (
    'failing_cases',
    'github_annotations',
    'line_writer',
    'markdown_summary',
    'on_github_actions',
    'ungated_failures',
    'verdict',
    'write_ci_outputs',
)

MAX_CASES = 50


def on_github_actions(env: Mapping[str, str]) -> bool:
    return env.get('GITHUB_ACTIONS', '').lower() == 'true'


def verdict(report: Report | Mapping[str, Any]) -> str:
    """One word for the run: the word of its verdict (see `report.decide`), as the exit status says it."""
    return report_verdict(report).word


def _cell(value: Any) -> str:
    return str(value).replace('|', '\\|').replace('\n', ' ')


def _pct(value: float | None) -> str:
    return '-' if value is None else f'{value * 100:.1f}%'


def _signed(value: float | None, fmt: str) -> str:
    return '-' if value is None else format(value, '+' + fmt)


_ICON = {'passed': '✅', 'gate failed': '❌', 'failed': '❌', 'incomplete': '⚠️', 'error': '⚠️'}


def markdown_summary(
    report: Report | Mapping[str, Any], *, title: str = 'evaltrace', max_cases: int = MAX_CASES
) -> str:
    """The run as GitHub-flavoured markdown: verdict, suites, gates, baseline deltas, failed and flaky cases."""
    run = as_report(report)
    word = verdict(run)
    where = f' (shard {run.shard["index"]}/{run.shard_count})' if run.shard_count > 1 else ''
    out = [f'## {_ICON.get(word, "⚠️")} {title}: {word}{where}', '']
    if not run.complete:
        problems = run.merge_problems or ['the run was interrupted or some cases did not run']
        out += [f'> **Incomplete run:** {_cell(p)}' for p in problems] + ['']
    out += [
        '| Suite | Passed | Failed | Error | Pass rate | Assertions | Tokens | Cost (USD) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    rows = [(s.suite, s.stats) for s in run.suites] + [('**session**', run.session.stats)]
    for name, st in rows:
        out.append(
            f'| {_cell(name)} | {st.passed} | {st.failed} | {st.error} | {_pct(st.pass_rate)} '
            f'| {_pct(st.assertion_pass_rate)} | {st.usage.total_tokens:,} | ${st.usage.cost_usd:.6f}'
            f'{_cell(cost_note(st.usage))} |'
        )
    replays = [(s.suite, replay_note(run.suite_cases(s.suite))) for s in run.suites]
    if any(note for _, note in replays):
        out += ['', '### Replayed, not live', '']
        out += [f'- `{_cell(suite)}`: {_cell(note)}' for suite, note in replays if note]
    gates = [g for _, g in run.gates]
    if gates:
        out += ['', '### Gates', '', '| Scope | Gate | Threshold | Actual | Result |', '|---|---|---:|---:|---|']
        for g in gates:
            result = '✅ pass' if g.passed else '❌ fail'
            detail = f' - {_cell(g.detail)}' if g.detail else ''
            out.append(
                f'| {_cell(g.scope)} | {_cell(g.name)} | {_cell(g.threshold)} | {_cell(g.actual)} | {result}{detail} |'
            )
    analyses: list[tuple[str, dict[str, Any], str | None]] = []
    for suite in run.suites:
        experiment: Mapping[str, Any] = suite.info.experiment or {}
        found: list[dict[str, Any]] = experiment.get('analyses') or []
        analyses.extend((suite.suite, a, experiment.get('url')) for a in found)
    if analyses:
        out += ['', '### Analyses', '']
        out += [
            f'- `{_cell(name)}`: {_cell(analysis_line(a))}' + (f' - [experiment]({url})' if url else '')
            for name, a, url in analyses
        ]
    out += _baseline_markdown(run.baseline, max_cases)
    failing = failing_cases(run)
    if failing:
        out += ['', f'### Failed cases ({len(failing)})', '']
        for c in failing[:max_cases]:
            reason = _cell((c.failures or [c.status])[0])[:200]
            link = f' - [trace]({c.trace_url})' if c.trace_url else ''
            trace = '' if link else (f' - trace id `{c.trace_id}`' if c.trace_id else '')
            out.append(f'- **{_cell(c.case)}** in `{c.suite}` ({c.status}): {reason}{link}{trace}')
        if len(failing) > max_cases:
            out.append(f'- … and {len(failing) - max_cases} more (see the JSON report)')
    flaky = [f for s in run.suites for f in s.stats.flaky]
    if flaky:
        out += ['', '### Flaky cases', '']
        out += [
            f'- `{_cell(f["case"])}` passed {f["passed"]}/{f["runs"]} ({f["pass_ratio"] * 100:.0f}%)' for f in flaky
        ]
    return '\n'.join(out) + '\n'


def _baseline_markdown(baseline: BaselineReport | None, max_cases: int) -> list[str]:
    if baseline is None:
        return []
    if baseline.error is not None:
        return ['', f'_Baseline `{baseline.path}` not used: {_cell(baseline.error)}_']
    comparison = baseline.comparison
    if comparison is None:
        return ['', f'_No baseline at `{baseline.path}`: nothing compared._']
    out = ['', f'### Against the baseline (`{baseline.path}`)', '']
    out += ['| Suite | Metric | Baseline | Current | Δ |', '|---|---|---:|---:|---:|']
    rows = [(s.suite, s.in_baseline, s.comparison) for s in comparison.suites]
    for suite, in_baseline, s in [*rows, ('**session**', True, comparison.session)]:
        name = _cell(suite)
        if not in_baseline:
            out.append(f'| {name} | not in the baseline | | | |')
            continue
        metrics: list[tuple[str, Delta, str]] = [
            ('pass rate', s.pass_rate, 'rate'),
            ('assertions', s.assertion_pass_rate, 'rate'),
        ]
        metrics += [(f'assertion {k}', v, 'rate') for k, v in s.evaluator_pass_rates.items()]
        metrics += [(f'score {k}', v, 'score') for k, v in s.score_averages.items()]
        for label, d, kind in metrics:
            if d.baseline is None and d.current is None:
                continue
            if kind == 'rate':
                cells = f'{_pct(d.baseline)} | {_pct(d.current)} | {_signed(_scaled(d.delta), ".1f")} pts'
            else:
                cells = f'{_num(d.baseline)} | {_num(d.current)} | {_signed(d.delta, ".3f")}'
            out.append(f'| {name} | {_cell(label)} | {cells} |')
        cost = s.cost_usd
        pct = '' if cost.delta_pct is None else f' ({cost.delta_pct:+.1f}%)'
        out.append(
            f'| {name} | cost (compared cases) | ${cost.baseline:.6f} | ${cost.current:.6f} | {cost.delta:+.6f}{pct} |'
        )
    listing = comparison.session
    for names, label in (
        (listing.newly_failing, 'Newly failing'),
        (listing.newly_fixed, 'Newly fixed'),
        (listing.added, 'Added'),
        (listing.removed, 'Removed'),
        (listing.changed, CHANGED.capitalize()),
    ):
        if names:
            shown = ', '.join(f'`{_cell(n)}`' for n in names[:max_cases])
            more = f' and {len(names) - max_cases} more' if len(names) > max_cases else ''
            out += ['', f'**{label} ({len(names)}):** {shown}{more}']
    return out


def _scaled(value: float | None) -> float | None:
    return None if value is None else value * 100


def _num(value: float | None) -> str:
    return '-' if value is None else f'{value:.3f}'


def _escape_data(text: str) -> str:
    return text.replace('%', '%25').replace('\r', '%0D').replace('\n', '%0A')


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(':', '%3A').replace(',', '%2C')


def github_annotations(report: Report | Mapping[str, Any]) -> list[str]:
    """One `::error` workflow command per failing case (with its link), and one per failed gate."""
    run = as_report(report)
    lines: list[str] = []
    for c in failing_cases(run):
        path = c.nodeid.split('::', 1)[0]
        title = f'eval case {c.status}: {c.case}'
        first = (c.failures or [c.status])[0]
        link = c.trace_url or (f'trace id {c.trace_id}' if c.trace_id else 'no trace')
        message = f'{c.nodeid}\n{first}\ntrace: {link}'
        lines.append(f'::error file={_escape_property(path)},title={_escape_property(title)}::{_escape_data(message)}')
    for _, g in run.gates:
        if not g.passed:
            title = f'evaltrace gate failed: {g.name}'
            message = f'{g.scope}: {g.name} actual {g.actual}, threshold {g.threshold}' + (
                f'\n{g.detail}' if g.detail else ''
            )
            lines.append(f'::error title={_escape_property(title)}::{_escape_data(message)}')
    return lines


def line_writer(reporter: Any) -> Callable[[str], None]:
    """Write whole lines through pytest's terminal reporter, each from the start of a line.

    GitHub reads a workflow command (`::error ...`) only at the start of a line. Under `-q` pytest leaves its
    progress line (`..F. [100%]`) open until the summary, so a line written at the end of the session would be
    glued to it; the reporter's own `ensure_newline` does not know (it tracks file paths, not columns).
    """

    def write_line(line: str) -> None:
        if reporter is None:
            return
        writer: Any = getattr(reporter, '_tw', None)
        if writer is not None and getattr(writer, 'width_of_current_line', 0):
            writer.line()
        reporter.write_line(line)

    return write_line


def write_ci_outputs(
    report: Report,
    *,
    markdown_path: Path | None,
    env: Mapping[str, str],
    write_line: Callable[[str], None],
) -> list[str]:
    """Write the markdown file and, on GitHub Actions, the step summary and annotations. Returns error messages."""
    errors: list[str] = []
    github = on_github_actions(env)
    step_summary = env.get('GITHUB_STEP_SUMMARY', '') if github else ''
    if markdown_path is None and not github:
        return errors
    text = markdown_summary(report)
    if markdown_path is not None:
        try:
            markdown_path.parent.mkdir(parents=True, exist_ok=True)
            markdown_path.write_text(text, encoding='utf-8')
        except OSError as e:
            errors.append(f'could not write the markdown summary {markdown_path}: {e}')
    if step_summary:
        try:
            with open(step_summary, 'a', encoding='utf-8') as f:
                f.write(text + '\n')
        except OSError as e:
            errors.append(f'could not append to GITHUB_STEP_SUMMARY {step_summary}: {e}')
    if github:
        for line in github_annotations(report):
            write_line(line)
    return errors
