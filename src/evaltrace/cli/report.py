"""`evaltrace report`: print the summary of a JSON report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..judge.exit import EXIT_BAD_INPUT, EXIT_OK
from ..report.final import read_report
from ..views.summary import summary_lines
from .paths import report_path

__all__ = ('register',)


def _run(args: argparse.Namespace) -> int:
    try:
        data = read_report(report_path(None if args.report is None else Path(args.report)))
    except ValueError as e:
        print(f'evaltrace: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in summary_lines(data):
        print(line)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        'report', help='print the summary of a JSON report', description='Print the per-suite summary of a report.'
    )
    p.add_argument('report', nargs='?', help='the report (default: the report setting, as pytest resolves it)')
    p.set_defaults(handler=_run)
