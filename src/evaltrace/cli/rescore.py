"""`evaltrace rescore`: the current evaluators on a stored run's outputs, without calling the agents.

It finds the run in the local trace store, then runs pytest on that run's suites (or the ones named) with
`--evaltrace-rescore=RUN_ID` (see run.rescore), which writes a new JSON report (and HTML report) as any run does.
`--pytest-args` passes further pytest options (e.g. `--pytest-args "-k refund --evaltrace-report other.json"`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from ..run.rescore_load import REPORT_ENV, RescoreError, resolve_run
from ..store.duckdb import StoreError, open_store
from ..store.records import run_suites
from .paths import SettingOffError
from .paths import report_path as cli_report_path
from .paths import store_path as cli_store_path

__all__ = ('register', 'rescore_command', 'run_rescore')


def _select(suites: Sequence[str], wanted: Sequence[str], run_id: str) -> list[str]:
    """The run's suites that the user named: by suite id, file path, or function name."""
    if not wanted:
        return list(suites)
    selected: list[str] = []
    for name in wanted:
        name = name.rstrip('/')
        matches = [
            s
            for s in suites
            if s == name or s.startswith(name + '::') or s.startswith(name + '/') or s.rsplit('::', 1)[-1] == name
        ]
        if not matches:
            known = ', '.join(suites) or 'none'
            raise RescoreError(f'run {run_id} has no suite {name!r} (its suites: {known})')
        selected.extend(m for m in matches if m not in selected)
    return selected


def run_rescore(
    suites: Sequence[str],
    *,
    run_id: str | None = None,
    store_path: Path | None = None,
    report_path: Path | None = None,
    pytest_args: Sequence[str] = (),
    err: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Re-score a stored run; returns pytest's exit status, or 1 with a one-line error on `err`."""
    err = cast('TextIO', sys.stderr) if err is None else err
    out = cast('TextIO', sys.stdout) if out is None else out
    try:
        store_path = cli_store_path(store_path)
        report_path = cli_report_path(report_path)
        con = open_store(store_path, on_notice=lambda line: err.write(line + '\n'))
        try:
            run = resolve_run(con, run_id)
            selected = _select(run_suites(con, run), suites, run)
        finally:
            con.close()
        if not selected:
            raise RescoreError(f'run {run} stored no eval case to re-score')
    except (StoreError, RescoreError, SettingOffError) as e:
        err.write(f'evaltrace rescore: {e}\n')
        return 1
    out.write(f'evaltrace rescore: run {run}, {len(selected)} suite(s); the agents are not called\n')
    out.flush()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix='evaltrace-rescore-') as tmp:
        # The run's own report (if the one on disk is that run's) fills what logfire's scrubbing took from the
        # store (see `run.rescore_load.load_stored_cases`); a copy, since the re-scoring run writes a new report in its
        # place.
        if report_path.is_file():
            copy = Path(tmp) / 'report.json'
            shutil.copyfile(report_path, copy)
            env[REPORT_ENV] = str(copy)
        return subprocess.call(_command(selected, run, store_path, pytest_args), env=env)


def _command(selected: Sequence[str], run: str, store_path: Path, pytest_args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        '-m',
        'pytest',
        *selected,
        f'--evaltrace-rescore={run}',
        f'--evaltrace-store={store_path.resolve()}',
        *pytest_args,
    ]


def rescore_command(args: argparse.Namespace) -> int:
    """The handler `register` sets: reads the parsed options and calls `run_rescore`."""
    return run_rescore(
        cast('list[str]', args.suites),
        run_id=cast('str | None', args.run),
        store_path=cast('Path | None', args.store),
        report_path=cast('Path | None', args.report),
        pytest_args=shlex.split(cast('str', args.pytest_args)),
    )


def register(subparsers: Any) -> None:
    parser = cast(
        'argparse.ArgumentParser',
        subparsers.add_parser(
            'rescore',
            help="re-run suites' current evaluators on a stored run's outputs and spans, without calling the agents",
            description=(
                "Re-run the current evaluators of a run's suites on the outputs and task span trees the local trace "
                'store kept, without calling the tasks, and write a new report. For a changed evaluator or threshold: '
                'the new verdict in seconds, at no task cost (an LLM judge replays its recorded answers, or calls its model when none were recorded). '
                "A run that was one shard (--evaltrace-shard) is re-scored as that shard: the other shards' cases are left out."
            ),
        ),
    )
    parser.add_argument('suites', nargs='*', help='suites to re-score: node id, file or function name (default: all)')
    parser.add_argument('--run', help='run id (or a unique prefix) to re-score (default: the latest run)')
    parser.add_argument(
        '--store',
        type=Path,
        help='trace store (default: the store setting, as pytest resolves it: .evaltrace/traces.duckdb)',
    )
    parser.add_argument(
        '--report',
        type=Path,
        help="the run's JSON report, if kept (default: the report setting, as pytest resolves it)",
    )
    parser.add_argument(
        '--pytest-args', default='', metavar='ARGS', help='further pytest options, as one string (e.g. "-k refund")'
    )
    parser.set_defaults(handler=rescore_command)
