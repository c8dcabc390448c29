"""Damaged state on disk: a corrupt store, spool lines and reports of the wrong shape, a run that selects no case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str) -> str:
    assert inputs != 'boom', 'boom'
    return inputs
"""


def _cli(project: EvalProject, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, '-m', 'evaltrace.cli', *args], cwd=project.path, capture_output=True, text=True, timeout=120
    )


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert 'Traceback' not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.fixture
def ran(project: EvalProject) -> EvalProject:
    """A project whose suite ran once: a report, an HTML page and a spool."""
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}, {'name': 'b', 'inputs': 'boom'}])
    project.write('evals/test_s.py', SUITE)
    project.write('tests_plain/test_plain.py', 'def test_plain():\n    pass\n')
    result = project.pytester.runpytest_subprocess('evals', 'tests_plain', '-p', 'no:cacheprovider')
    assert result.ret == 1, result.stdout.str()
    return project


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == 'empty':
        path.write_bytes(b'')
    elif how == 'random':
        path.write_bytes(os.urandom(len(data) or 4096))
    else:  # cut short, as a full disk leaves it
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize('how', ['empty', 'random', 'truncated'])
def test_a_corrupt_store_is_rebuilt_from_the_spool_with_one_line(ran: EvalProject, how: str) -> None:
    store = ran.path / '.evaltrace/traces.duckdb'
    first = _cli(ran, 'sql', 'SELECT count(*) AS n FROM records', '--format', 'json')
    assert first.returncode == 0 and store.exists(), first.stderr
    _damage(store, how)
    # The next run spools its spans; the next query finds the store unreadable and rebuilds it from that spool.
    rerun = ran.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    assert rerun.ret == 1
    shown = _cli(ran, 'show', 'test_s[b]')
    _no_traceback(shown)
    assert shown.returncode == 0, shown.stderr
    notices = [line for line in shown.stderr.splitlines() if 'not a readable trace store' in line]
    assert len(notices) == 1 and 'rebuilt the store from the spool' in notices[0], shown.stderr
    assert 'test_s[b]  ERROR  trace' in shown.stdout
    assert (ran.path / '.evaltrace/traces.duckdb.corrupt').exists()
    again = _cli(ran, 'show', 'test_s[b]')
    assert again.returncode == 0 and again.stderr == ''


WRONG_SHAPE_SPANS = [
    '[1, 2, 3]',
    '"a string"',
    '{"span_id": 5, "trace_id": 7, "attributes": "x"}',
    '{"span_id": "ab", "trace_id": "01", "run_id": "r", "start_timestamp": "not a time", "attributes": [1]}',
    '{"span_id": "ac", "trace_id": "01", "run_id": "r", "start_timestamp": 5, "end_timestamp": {}}',
    '{"span_id": "ad", "trace_id": "01", "run_id": "r", "start_timestamp": "2026-01-01T00:00:00Z", "level": "bogus"}',
]


def test_spool_lines_of_the_wrong_shape_are_skipped(ran: EvalProject) -> None:
    spool = next((ran.path / '.evaltrace/spool').glob('*.jsonl'))
    with spool.open('a') as f:
        f.write(''.join(line + '\n' for line in WRONG_SHAPE_SPANS))
    shown = _cli(ran, 'show', 'test_s[b]')
    _no_traceback(shown)
    assert shown.returncode == 0 and 'test_s[b]  ERROR  trace' in shown.stdout, shown.stderr
    rows = _cli(
        ran, 'sql', "SELECT count(*) AS n FROM records WHERE level IS NULL AND span_id = 'ad'", '--format', 'json'
    )
    assert rows.returncode == 0 and json.loads(rows.stdout) == [{'n': 1}], rows.stdout + rows.stderr
    assert not list((ran.path / '.evaltrace/spool').glob('*.rejected'))


def _edit(report: dict[str, Any], how: str) -> Any:
    case = report['cases'][0]
    return {
        'cases-not-a-list': {**report, 'cases': 5},
        'case-without-status': {**report, 'cases': [{k: v for k, v in case.items() if k != 'status'}]},
        'status-a-number': {**report, 'cases': [{**case, 'status': 5}]},
        'scores-a-list': {**report, 'cases': [{**case, 'scores': [1]}]},
        'usage-a-string': {**report, 'cases': [{**case, 'task_usage': 'x'}]},
        'trace-id-a-number': {**report, 'cases': [{**case, 'status': 'failed', 'trace_id': 12}]},
        'suites-a-dict': {**report, 'suites': {'a': 1}},
        'stats-null': {**report, 'suites': [{**report['suites'][0], 'stats': None}]},
        'session-a-list': {**report, 'session': []},
        'shard-a-string': {**report, 'shard': 'x'},
        'expected-a-number': {**report, 'expected': 3},
        'duration-a-string': {**report, 'cases': [{**case, 'duration_s': 'slow'}]},
    }[how]


@pytest.mark.parametrize(
    'how',
    [
        'cases-not-a-list',
        'case-without-status',
        'status-a-number',
        'scores-a-list',
        'usage-a-string',
        'trace-id-a-number',
        'suites-a-dict',
        'stats-null',
        'session-a-list',
        'shard-a-string',
        'expected-a-number',
        'duration-a-string',
    ],
)
def test_a_report_of_the_wrong_shape_is_a_one_line_error_in_every_command(ran: EvalProject, how: str) -> None:
    good = ran.report()
    bad = ran.path / 'bad.json'
    bad.write_text(json.dumps(_edit(good, how)))
    for args in (
        ['report', 'bad.json'],
        ['baseline', 'save', '--report', 'bad.json', '-o', 'base.json'],
        ['merge', 'bad.json', '-o', 'merged.json'],
        ['show', '--last-failed', '--report', 'bad.json'],
        ['show', 'test_s[b]', '--report', 'bad.json'],
    ):
        result = _cli(ran, *args)
        _no_traceback(result)
        assert result.returncode != 0, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and 'bad.json: not a valid evaltrace report: ' in lines[0], (args, result.stderr)


@pytest.mark.parametrize('args', [['-m', 'not evaltrace'], ['--evaltrace-skip'], ['-k', 'plain']])
def test_a_run_that_selects_no_eval_case_leaves_report_and_html_alone(ran: EvalProject, args: list[str]) -> None:
    report, html = ran.path / '.evaltrace/report.json', ran.path / '.evaltrace/report.html'
    before = report.read_bytes(), html.read_bytes()
    result = ran.pytester.runpytest_subprocess('evals', 'tests_plain', '-p', 'no:cacheprovider', *args)
    assert result.ret == 0, result.stdout.str()
    assert (report.read_bytes(), html.read_bytes()) == before
    saved = _cli(ran, 'baseline', 'save', '-o', 'base.json')
    assert saved.returncode == 0, saved.stderr  # the last real run is still there to save


SKIPPED_SUITES = {
    'skip-mark': """
import pytest
import evaltrace

@pytest.mark.skip(reason='not today')
@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str) -> str:
    return inputs
""",
    'fixture-skip': """
import pytest
import evaltrace

@pytest.fixture
def api_key() -> str:
    pytest.skip('no API key')

@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str, api_key: str) -> str:
    return inputs
""",
}


@pytest.mark.parametrize('how', sorted(SKIPPED_SUITES))
def test_a_run_whose_every_case_is_skipped_writes_its_own_report(ran: EvalProject, how: str) -> None:
    """Every case selected, none run (no API key in CI): the report is this run's, not the last real run's, which
    would pass for a run that never happened. Only a run that selects no eval case leaves the last one alone."""
    before = ran.report()
    html = ran.path / '.evaltrace/report.html'
    html_before = html.read_bytes()
    ran.write('evals/test_s.py', SKIPPED_SUITES[how])
    result = ran.pytester.runpytest_subprocess('evals', 'tests_plain', '-p', 'no:cacheprovider')
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=2)
    after = ran.report()
    assert after['run_id'] != before['run_id']
    assert (after['cases'], after['complete'], after['verdict']['word']) == ([], True, 'passed')
    assert after['verdict']['reason'] == 'no eval case ran (every one selected was skipped)'
    assert html.read_bytes() != html_before
    result.stdout.fnmatch_lines(
        ['verdict: passed (exit status 0): no eval case ran (every one selected was skipped)', 'report: *report.json']
    )
    saved = _cli(ran, 'baseline', 'save', '-o', 'base.json')
    assert saved.returncode == 2 and 'the report has no cases (its run skipped every eval case' in saved.stderr


def test_a_session_rate_gate_fails_a_run_whose_every_case_is_skipped(project: EvalProject) -> None:
    """No case ran, so no pass rate was measured: the gate checked nothing, as when every task calls pytest.skip."""
    project.write('pyproject.toml', '[tool.pytest.ini_options]\n\n[tool.evaltrace.gate]\nmin_pass_rate = 0.9\n')
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}])
    project.write('evals/test_s.py', SKIPPED_SUITES['skip-mark'])
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 6, result.stdout.str()
    assert project.report()['verdict']['reason'] == 'gate(s) failed: min_pass_rate'


def test_baseline_save_refuses_a_report_with_no_cases(ran: EvalProject) -> None:
    empty = {**ran.report(), 'cases': [], 'suites': [], 'expected': []}
    (ran.path / 'empty.json').write_text(json.dumps(empty))
    result = _cli(ran, 'baseline', 'save', '--report', 'empty.json', '-o', 'base.json')
    assert result.returncode == 2
    assert result.stderr.strip() == (
        'evaltrace: empty.json: the report has no cases (its run skipped every eval case, or selected none); run the '
        'evals first'
    )
    assert not (ran.path / 'base.json').exists()


def test_a_report_that_cannot_be_written_is_said_once_and_not_named_as_written(project: EvalProject) -> None:
    project.dataset('cases', [{'name': n, 'inputs': n} for n in ('a', 'b', 'c')])
    project.write('evals/test_s.py', SUITE)
    (project.path / 'afile').write_text('')  # the report's folder is a file
    result = project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', 'evals', '--evaltrace-report=afile/x.json')
    errors = [line for line in result.outlines if 'could not write the report' in line]
    assert len(errors) == 1, errors
    assert not any(line.startswith('report: ') for line in result.outlines)
    assert result.ret == 7  # evaltrace could not do its job
