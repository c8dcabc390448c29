"""An eval run in a pytest subprocess that blocks mid-run, for the tests that signal, kill or outlive it."""

from __future__ import annotations

import subprocess
import sys
import time

from evaltrace.report.journal import journal_paths
from tests.support.eval_project import EvalProject

__all__ = ('BLOCKING_SUITE', 'case_statuses', 'start_blocking_run', 'wait_in_flight')

# c0 and c1 finish at once; c2 and c3 block until the run is signalled. Each case leaves a marker when it starts.
BLOCKING_SUITE = """
import asyncio
from pathlib import Path
import evaltrace

@evaltrace.suite('datasets/cases.yaml', max_concurrency=4)
async def test_block(inputs: str) -> str:
    Path(f'started-{inputs}').touch()
    if inputs in ('c2', 'c3'):
        await asyncio.sleep(120)
    return inputs
"""


def start_blocking_run(project: EvalProject) -> subprocess.Popen[bytes]:
    """Start `pytest evals -q` on a 4-case suite of which c2 and c3 block (for 120 s) until the run is signalled."""
    project.dataset('cases', [{'name': f'c{i}', 'inputs': f'c{i}'} for i in range(4)])
    project.write('evals/test_block.py', BLOCKING_SUITE)
    return subprocess.Popen(
        [sys.executable, '-m', 'pytest', 'evals', '-p', 'no:cacheprovider', '-q'],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_in_flight(project: EvalProject, proc: subprocess.Popen[bytes]) -> None:
    """Wait until c2 and c3 are running and c0 and c1 are journaled (finished)."""
    report = project.path / '.evaltrace/report.json'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ''
        started = all((project.path / f'started-c{i}').exists() for i in (2, 3))
        if started and sum(j.read_text().count('\n') for j in journal_paths(report)) >= 2:
            return
        time.sleep(0.05)
    raise AssertionError('cases never got in flight')


def case_statuses(data: dict[str, object]) -> dict[str, str]:
    """Each case's status in a report, by case name."""
    return {c['case']: c['status'] for c in data['cases']}  # type: ignore[index, union-attr]
