"""A failed gate is a failure in pytest's own outputs (last line, short summary, JUnit), and a run stopped by `-x`
has one verdict serially and under xdist. Seen from outside through inner pytest runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.support.eval_project import EvalProject
from tests.support.words_suite import SUITE, WORDS

FOUR_WORDS = WORDS[:4]  # 3 pass, `bad` fails its assertion


def _run(project: EvalProject, xdist: bool, *args: str) -> pytest.RunResult:
    if xdist:
        return project.pytester.runpytest_subprocess('-p', 'no:cacheprovider', '-n', '2', *args)
    return project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', *args)


def _suite(project: EvalProject) -> ET.Element:
    root = ET.parse(project.path / 'junit.xml').getroot()
    suite = root if root.tag == 'testsuite' else root.find('testsuite')
    assert suite is not None
    return suite


@pytest.mark.parametrize('xdist', [False, True], ids=['serial', 'xdist'])
def test_a_failed_gate_is_a_failed_report_in_the_last_line_and_in_junit(project: EvalProject, xdist: bool) -> None:
    project.dataset('words', FOUR_WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate='evaltrace.Gate(min_pass_rate=0.9)'))
    result = _run(project, xdist, 'evals', '--junitxml=junit.xml')
    out = result.stdout.str()
    assert result.ret == 6, out
    outcomes = result.parseoutcomes()
    assert (outcomes.get('passed'), outcomes.get('gated'), outcomes.get('failed')) == (4, 1, 1), out
    gate_id = 'evals/test_words.py::test_words::gate[min_pass_rate]'
    result.stdout.fnmatch_lines(
        [
            '*test_words.gate?min_pass_rate? ___*',
            'gate min_pass_rate failed: actual 0.75, threshold 0.9',
            'verdict: gate failed (exit status 6)*',
            f'FAILED {gate_id.replace("[", "?").replace("]", "?")} - gate min_pass_r*',
        ]
    )
    suite = _suite(project)
    assert (suite.get('failures'), suite.get('errors'), suite.get('skipped')) == ('1', '0', '1')
    failed = [tc for tc in suite.iter('testcase') if tc.find('failure') is not None]
    assert [(tc.get('classname'), tc.get('name')) for tc in failed] == [
        ('evals.test_words.test_words', 'gate[min_pass_rate]')
    ]
    failure = failed[0].find('failure')
    assert failure is not None and 'gate min_pass_rate failed' in (failure.get('message') or '')
    props = {p.get('name'): p.get('value') for p in failed[0].iter('property')}
    assert props['evaltrace.outcome'] == 'gate failed'

    # A passing gate adds nothing: no report, no test case.
    project.write('evals/test_words.py', SUITE.format(gate='evaltrace.Gate(min_pass_rate=0.7)'))
    result = _run(project, xdist, 'evals', '--junitxml=junit.xml')
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes() == {'passed': 4, 'gated': 1}
    assert not [tc for tc in _suite(project).iter('testcase') if 'gate[' in (tc.get('name') or '')]


def test_a_failed_session_gate_is_reported_under_evaltrace(project: EvalProject) -> None:
    project.dataset('words', FOUR_WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate='None'))
    project.write('pyproject.toml', '[tool.evaltrace.gate]\nmin_pass_rate = 0.9\n')
    result = _run(project, False, 'evals', '--junitxml=junit.xml')
    assert result.ret == 6, result.stdout.str()
    result.stdout.fnmatch_lines(['FAILED evaltrace::gate?min_pass_rate? - gate min_pass_r*'])
    assert result.parseoutcomes() == {'passed': 4, 'gated': 1, 'failed': 1}


STOPPED = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/slow.yaml', max_concurrency=2)
async def test_slow(inputs: float) -> float:
    await asyncio.sleep(inputs)
    return -1.0 if inputs == 0.2 else inputs


def test_after() -> None:
    pass
"""


@pytest.mark.parametrize('xdist', [False, True], ids=['serial', 'xdist'])
def test_a_run_stopped_by_exitfirst_fails_with_1_serially_and_under_xdist(project: EvalProject, xdist: bool) -> None:
    """pytest's convention: a run stopped by -x after a failure exits 1; the cases it left out are listed."""
    # c1 fails at 0.2 s; the others would run 30 s or more, so that -x stops the run before they end on any machine.
    inputs = [0.1, 0.2] + [30.0 + i / 10 for i in range(6)]
    project.dataset(
        'slow', [{'name': f'c{i}', 'inputs': x, 'expected_output': x} for i, x in enumerate(inputs)], ['EqualsExpected']
    )
    project.write('evals/test_slow.py', STOPPED)
    result = _run(project, xdist, 'evals', '-x')
    out = result.stdout.str()
    assert result.ret == 1, out
    result.stdout.fnmatch_lines(
        ['*verdict: failed (exit status 1): the run was stopped by -x/--maxfail after a failure*']
    )
    report = project.report()
    assert report['complete'] is False
    assert (report['verdict']['word'], report['verdict']['exit_status']) == ('failed', 1)
    not_run = set(report.get('missing', [])) | set(report.get('cancelled', [])) | set(report.get('not_started', []))
    assert not_run and all(n.startswith('evals/test_slow.py::test_slow[') for n in not_run)
    assert 'evals/test_slow.py::test_slow[c1]' not in not_run


def test_last_failed_records_the_gated_case_not_the_gate(project: EvalProject) -> None:
    """`--lf` re-runs the failing cases of a failed gate: pytest's cache (keyed by `report.id` in pytest 9) holds
    them, and no `gate[...]` id, which names no test to re-run."""
    import json

    project.dataset('words', FOUR_WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate='evaltrace.Gate(min_pass_rate=0.9)'))
    result = project.pytester.runpytest_inprocess('evals')
    assert result.ret == 6, result.stdout.str()
    lastfailed = json.loads((project.path / '.pytest_cache/v/cache/lastfailed').read_text())
    assert list(lastfailed) == ['evals/test_words.py::test_words[bad]']
    result = project.pytester.runpytest_inprocess('evals', '--lf')
    assert result.parseoutcomes().get('gated') == 1 and 'passed' not in result.parseoutcomes()


K_OF_N = """
import time
import evaltrace
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected

calls = {'n': 0}
dataset = Dataset(name='det', cases=[Case(name='two_of_three', inputs='x', expected_output='ok')], evaluators=[EqualsExpected()])


@evaltrace.suite(dataset, repeat=3, pass_k=2, max_concurrency=1)
def test_det(inputs: str) -> str:
    calls['n'] += 1
    if calls['n'] == 2:
        return 'bad'  # the second run fails at once
    if calls['n'] == 3:
        time.sleep(0.5)  # the third passes, after the second's item has been reached
    return 'ok'
"""


@pytest.mark.parametrize('args', [(), ('-x',)], ids=['plain', 'exitfirst'])
def test_a_failing_repeat_of_a_case_that_passes_k_of_n_is_gated_whichever_run_ends_first(
    project: EvalProject, args: tuple[str, ...]
) -> None:
    """2 of 3 runs pass with pass_k=2: the failing run is GATED (not FAILED), and `-x` does not stop on it, even
    when its item is reached before the run that makes the case pass has ended."""
    project.write('evals/test_det.py', K_OF_N)
    result = project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', 'evals', *args)
    assert result.parseoutcomes() == {'passed': 2, 'gated': 1}, result.stdout.str()
    assert result.ret == 0


K_OF_N_ERROR = """
import evaltrace
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected

calls = {{'n': 0}}
dataset = Dataset(
    name='err',
    cases=[Case(name='flaky', inputs='x', expected_output='ok'), Case(name='broken', inputs='y', expected_output='ok')],
    evaluators=[EqualsExpected()],
)


@evaltrace.suite(dataset, repeat=3, pass_k=2, max_concurrency=1, gate=evaltrace.Gate(max_errors={max_errors}))
def test_err(inputs: str) -> str:
    if inputs == 'y':
        raise RuntimeError('always down')
    calls['n'] += 1
    if calls['n'] == 1:
        raise RuntimeError('down once')  # the first run errors; the case passes 2 of 3
    return 'ok'
"""


@pytest.mark.parametrize('max_errors', [1, 0])
def test_max_errors_counts_cases_that_error_not_a_repeat_of_a_case_that_passes_k_of_n(
    project: EvalProject, max_errors: int
) -> None:
    # 'flaky' errors once and passes 2 of 3: k-of-n forgives that run, and so must max_errors. 'broken' errors in all
    # three runs: one case that errored. Counting runs, the gate saw 4 errors and failed max_errors = 1.
    project.write('evals/test_err.py', K_OF_N_ERROR.format(max_errors=max_errors))
    result = project.pytester.runpytest_subprocess('-p', 'no:cacheprovider', 'evals')
    [suite] = project.report()['suites']
    [gate] = [g for g in suite['gates'] if g['name'] == 'max_errors']
    assert (gate['actual'], gate['passed']) == (1, max_errors == 1)
    assert suite['stats']['error'] == 4  # runs, as pytest counts its items
    assert suite['stats']['errored_cases'] == 1
    assert result.ret == (0 if max_errors == 1 else 6), result.stdout.str()
