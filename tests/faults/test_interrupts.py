"""Ctrl-C, SIGTERM and SIGKILL mid-run: every finished case is on disk, the report is valid and incomplete."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from evaltrace._journal import journal_paths, recover_report
from tests.conftest import EvalProject

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


def _start(project: EvalProject) -> subprocess.Popen[bytes]:
    project.dataset('cases', [{'name': f'c{i}', 'inputs': f'c{i}'} for i in range(4)])
    project.write('evals/test_block.py', BLOCKING_SUITE)
    return subprocess.Popen(
        [sys.executable, '-m', 'pytest', 'evals', '-p', 'no:cacheprovider', '-q'],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_in_flight(project: EvalProject, proc: subprocess.Popen[bytes]) -> None:
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


def _statuses(data: dict[str, object]) -> dict[str, str]:
    return {c['case']: c['status'] for c in data['cases']}  # type: ignore[index, union-attr]


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_report_of_finished_cases(project: EvalProject, sig: signal.Signals) -> None:
    proc = _start(project)
    _wait_in_flight(project, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode()
    data = project.report()
    assert data['complete'] is False
    assert data['interrupted'] == sig.name
    assert _statuses(data) == {'c0': 'passed', 'c1': 'passed'}
    assert not journal_paths(project.path / '.evaltrace/report.json')


def test_second_ctrl_c_exits_at_once(project: EvalProject) -> None:
    # a conftest whose session-finish hook hangs: only a second Ctrl-C can end the run
    project.write('conftest.py', 'import time\ndef pytest_sessionfinish():\n    time.sleep(60)\n')
    proc = _start(project)
    _wait_in_flight(project, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None  # held by the hanging hook
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGINT, out.decode()
    assert b'second SIGINT, exiting now' in out
    # finished cases are on disk: the journal (or a report written since) holds c0 and c1
    report = project.path / '.evaltrace/report.json'
    data = recover_report(report) or json.loads(report.read_text())
    assert _statuses(data) == {'c0': 'passed', 'c1': 'passed'}


def test_sigkill_loses_no_finished_case(project: EvalProject) -> None:
    proc = _start(project)
    _wait_in_flight(project, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    report = project.path / '.evaltrace/report.json'
    for leftover in report.parent.glob('*.tmp'):
        raise AssertionError(f'half-written file left behind: {leftover}')
    if report.exists():
        json.loads(report.read_text())  # whatever is there is valid JSON
    data = recover_report(report)
    assert data is not None
    assert data['complete'] is False
    assert data['interrupted'] == 'killed'
    assert _statuses(data) == {'c0': 'passed', 'c1': 'passed'}
    assert json.loads(report.read_text()) == json.loads(json.dumps(data))
