"""Journals belong to their run: another pytest never takes a live run's journal, and recovery never stops a run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from evaltrace.report.journal import journal_paths
from tests.support.blocking_run import case_statuses, start_blocking_run, wait_in_flight
from tests.support.eval_project import EvalProject


def _pytest(project: EvalProject, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_pytest_leaves_a_live_runs_journal_and_recovers_it_once_the_run_is_killed(
    project: EvalProject,
) -> None:
    report = project.path / '.evaltrace/report.json'
    proc = start_blocking_run(project)
    try:
        wait_in_flight(project, proc)
        live = journal_paths(report)
        assert len(live) == 1
        before = live[0].read_text()
        for args in (['--co', 'evals'], ['evals', '-k', 'c0']):
            second = _pytest(project, *args)
            assert 'INTERNALERROR' not in second.stdout + second.stderr
            assert journal_paths(report) == live and live[0].read_text() == before, second.stdout
            assert 'recovered' not in second.stdout
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    # Now the run is dead: the next pytest (even --co) recovers its finished cases, and says so in one line.
    third = _pytest(project, '--co', '-q', 'evals')
    assert third.returncode == 0, third.stdout + third.stderr
    lines = [line for line in third.stdout.splitlines() if 'evaltrace: recovered' in line]
    assert len(lines) == 1 and '2 finished case(s) of a killed run' in lines[0], third.stdout
    data = json.loads(report.read_text())
    assert data['interrupted'] == 'killed' and data['complete'] is False
    assert case_statuses(data) == {'c0': 'passed', 'c1': 'passed'}
    assert journal_paths(report) == []


CASE = {
    'suite': 'evals/test_s.py::test_s',
    'case': 'good',
    'nodeid': 'evals/test_s.py::test_s[good]',
    'status': 'passed',
}
SUITE = {'suite': 'evals/test_s.py::test_s', 'name': 'test_s', 'dataset': 'cases'}


def _dead_journal(project: EvalProject, lines: list[str]) -> None:
    path = project.path / '.evaltrace/.report.json.journal.deadbeef.999999.jsonl'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(line + '\n' for line in lines))


MALFORMED = [
    '{"case": 1, "suite": 2}',  # valid JSON, wrong shape
    '{"case": {"suite": "s"}, "suite": {}}',
    '[1, 2, 3]',
    'not json at all',
    '{"case": {"suite": "evals/test_s.py::test_s", "case": "cut", "nodeid": "n", "sta',  # cut by a kill
]


def test_malformed_journal_lines_are_skipped_and_said_never_an_internalerror(project: EvalProject) -> None:
    _dead_journal(project, [*MALFORMED, json.dumps({'case': CASE, 'suite': SUITE})])
    (project.path / '.evaltrace/report.json').write_text('{"cases": 5, "suites": {"x": 1}, "expected": "no"}')
    result = _pytest(project, '--co', '-q')
    out = result.stdout + result.stderr
    assert 'INTERNALERROR' not in out and 'Traceback' not in out
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out
    assert 'recovered 1 finished case(s) of a killed run' in out and '5 malformed line(s) skipped' in out
    data = json.loads((project.path / '.evaltrace/report.json').read_text())
    assert case_statuses(data) == {'good': 'passed'}


def test_only_malformed_lines(project: EvalProject) -> None:
    _dead_journal(project, MALFORMED)
    result = _pytest(project, '--co', '-q')
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout + result.stderr
    assert 'nothing to recover' in result.stdout and '5 malformed line(s) skipped' in result.stdout
    assert journal_paths(project.path / '.evaltrace/report.json') == []


def test_a_report_that_cannot_be_written_leaves_the_journal_and_the_run_goes_on(project: EvalProject) -> None:
    # Runs as root here, so a read-only folder would not stop a write: a folder in the report's place does.
    _dead_journal(project, [json.dumps({'case': CASE, 'suite': SUITE})])
    (project.path / '.evaltrace/report.json').mkdir()
    project.write('test_plain.py', 'def test_plain():\n    pass\n')
    result = _pytest(project, 'test_plain.py')
    out = result.stdout + result.stderr
    assert 'INTERNALERROR' not in out
    assert result.returncode == 0, out
    assert 'could not recover the journal(s) of a killed run' in out and 'left in place' in out
    assert len(journal_paths(project.path / '.evaltrace/report.json')) == 1
