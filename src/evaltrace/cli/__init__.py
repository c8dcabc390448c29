"""The `evaltrace` command: work with the reports and traces that `pytest evals/` leaves behind.

Each subcommand lives with the module that does the work; this file only assembles the parser. A subcommand module
exposes `register(subparsers)`, which adds its parser and sets `handler` to a function `(args) -> int`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

import pytest

__all__ = ('build_parser', 'main')

# Subcommand modules, in the order `evaltrace --help` lists them.
SUBCOMMANDS = ('.init', '.store', '.report', '.gating', '.rescore')


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version('evaltrace')
    except PackageNotFoundError:  # run from a source tree that was never installed
        return 'unknown'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='evaltrace',
        description=(
            'Work with the results of `pytest evals/`: the JSON report (.evaltrace/report.json), '
            'baselines, shard merges, and the local trace store.'
        ),
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {_version()}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in SUBCOMMANDS:
        module = import_module(name, __package__)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, 'handler', None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except pytest.UsageError as e:  # a bad setting, found while resolving a command's defaults as pytest would
        message = str(e)
        print(message if message.startswith('evaltrace') else f'evaltrace: {message}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('evaltrace: interrupted', file=sys.stderr)
        return 130
    except BrokenPipeError:  # `evaltrace show … | head`: the reader left; that is not an error
        sys.stdout = open(os.devnull, 'w')  # noqa: SIM115  (silence the interpreter's flush at exit)
        return 0


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
