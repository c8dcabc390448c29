"""Ctrl-C, SIGTERM and SIGKILL mid-run: every finished case is on disk, the report is valid and incomplete."""

from __future__ import annotations

import json
import signal
import time

import pytest

from evaltrace.report.journal import journal_paths, recover_report
from tests.support.blocking_run import case_statuses, start_blocking_run, wait_in_flight
from tests.support.eval_project import EvalProject


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_report_of_finished_cases(project: EvalProject, sig: signal.Signals) -> None:
    proc = start_blocking_run(project)
    wait_in_flight(project, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode()
    data = project.report()
    assert data['complete'] is False
    assert data['interrupted'] == sig.name
    assert case_statuses(data) == {'c0': 'passed', 'c1': 'passed'}
    assert not journal_paths(project.path / '.evaltrace/report.json')


def test_second_ctrl_c_exits_at_once(project: EvalProject) -> None:
    # a conftest whose session-finish hook hangs: only a second Ctrl-C can end the run. The hook leaves a marker, so
    # that the second Ctrl-C is sent once the first has been handled (two signals sent close together, before the
    # process runs its handler, would be seen as one).
    hook = 'import time\nfrom pathlib import Path\ndef pytest_sessionfinish():\n    Path("in-finish").touch()\n'
    project.write('conftest.py', hook + '    time.sleep(60)\n')
    proc = start_blocking_run(project)
    wait_in_flight(project, proc)
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while not (project.path / 'in-finish').exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None  # held by the hanging hook
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)  # at once: well before the hook's 60 s
    assert proc.returncode == 128 + signal.SIGINT, out.decode()
    assert b'second SIGINT, exiting now' in out
    # finished cases are on disk: the journal (or a report written since) holds c0 and c1
    report = project.path / '.evaltrace/report.json'
    data = recover_report(report) or json.loads(report.read_text())
    assert case_statuses(data) == {'c0': 'passed', 'c1': 'passed'}


def test_sigkill_loses_no_finished_case(project: EvalProject) -> None:
    proc = start_blocking_run(project)
    wait_in_flight(project, proc)
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
    assert case_statuses(data) == {'c0': 'passed', 'c1': 'passed'}
    assert json.loads(report.read_text()) == json.loads(json.dumps(data))
