"""`evaltrace baseline save` and `evaltrace merge`: the CLI side of gating a CI run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..judge.exit import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_OK
from ..report.baseline import BaselineError, load_baseline, save_baseline
from ..report.decide import decide, report_verdict
from ..report.final import BaselineInput, Report, read_report
from ..report.merge import merge_reports
from ..report.parts import write_json_atomic
from ..views.ci import markdown_summary
from ..views.summary import summary_lines
from .paths import baseline_path, report_path

__all__ = ('register',)


def _out(line: str = '') -> None:
    sys.stdout.write(line + '\n')


def _err(message: str) -> None:
    sys.stderr.write(f'evaltrace: {message}\n')


def _baseline_save(args: argparse.Namespace) -> int:
    report_file = report_path(None if args.report is None else Path(args.report))
    output = baseline_path(None if args.output is None else Path(args.output))
    try:
        report = read_report(report_file)
        baseline = save_baseline(report, output)
    except (ValueError, OSError) as e:
        _err(f'{report_file}: {e}' if isinstance(e, BaselineError) else str(e))
        return EXIT_BAD_INPUT
    n_cases = sum(len(s['cases']) for s in baseline['suites'].values())
    _out(f'wrote {output}: {len(baseline["suites"])} suite(s), {n_cases} case(s) from run {baseline["run_id"]}')
    return EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    sources: list[tuple[str, Report]] = []
    for name in args.reports:
        try:
            sources.append((name, read_report(Path(name))))
        except ValueError as e:
            _err(str(e))
            return EXIT_BAD_INPUT
    baseline_file = baseline_path(None if args.baseline is None else Path(args.baseline))
    try:
        baseline = BaselineInput(str(baseline_file), load_baseline(baseline_file))
    except BaselineError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    result = merge_reports(sources, baseline=baseline)
    report = result.final.with_verdict(decide(result.final))  # the same rule as a pytest session's (see report.decide)
    try:
        write_json_atomic(Path(args.output), report.to_json())
        if args.markdown:
            Path(args.markdown).write_text(markdown_summary(report, title='evaltrace (merged)'), encoding='utf-8')
    except OSError as e:
        _err(f'could not write the merged report: {e}')
        return EXIT_INCOMPLETE
    for line in summary_lines(report):
        _out(line)
    for problem in result.problems:
        _err(f'incomplete merge: {problem}')
    status = report_verdict(report).exit_status
    _out(f'merged {len(sources)} report(s) into {args.output}: exit status {status}')
    return status


def register(subparsers: Any) -> None:
    baseline = subparsers.add_parser(
        'baseline',
        help='save a compact baseline of a run, to commit and compare later runs against',
        description=(
            'Baselines: `evaltrace baseline save` writes a compact digest of a complete run (per case: status, '
            'assertions, scores, cost, inputs digest; per suite: averages and cost). Later `pytest evals/` runs '
            'compare against it (the `baseline` setting, default evals/baseline.json) and check the regression gates.'
        ),
    )
    actions = baseline.add_subparsers(dest='baseline_command', metavar='ACTION')
    save = actions.add_parser(
        'save',
        help='write the baseline of a report',
        description='Write the baseline of a complete (or merged) report, meant to be committed.',
    )
    save.add_argument(
        '--report', help='the JSON report of the run (default: the report setting, as pytest resolves it)'
    )
    save.add_argument(
        '-o', '--output', help='where to write the baseline (default: the baseline setting: evals/baseline.json)'
    )
    save.set_defaults(handler=_baseline_save)
    baseline.set_defaults(handler=lambda _args: (baseline.print_help(), EXIT_BAD_INPUT)[1])  # pyright: ignore[reportUnknownLambdaType]

    merge = subparsers.add_parser(
        'merge',
        help='merge shard reports and recompute every gate on the merged result',
        description=(
            'Merge the reports of the shards of a run (pytest --evaltrace-shard=i/n) into one report and recompute '
            'every gate on it. A missing shard, a case that never ran or a case that ran twice makes the merge '
            'incomplete: it fails with exit status 7. Exit statuses: 0 passed, 1 an ungated case failed, '
            '6 a gate failed, 7 incomplete, 2 bad input.'
        ),
    )
    merge.add_argument('reports', nargs='+', help='the shard reports (.evaltrace/report.json of each shard)')
    merge.add_argument('-o', '--output', required=True, help='where to write the merged report')
    merge.add_argument(
        '--baseline',
        help='baseline to compare the merged run with, when the file exists (default: the baseline setting)',
    )
    merge.add_argument('--markdown', help='also write the markdown summary of the merged run to this path')
    merge.set_defaults(handler=_merge)
