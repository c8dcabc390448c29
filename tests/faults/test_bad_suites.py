"""A suite that cannot run (bad decorator settings, no parameters, a module that fails to import) is its own error
item: the other suites, in its module and in others, still run. A fixture teardown that raises is an error of its own
suite run's item, not of the next one."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject

# The bad suite sits between two good ones of the same module: the decorator runs at import, so a setting it
# rejected there would fail the whole module.
SAME_MODULE = """
import evaltrace

@evaltrace.suite('datasets/good.yaml')
async def test_before(inputs: str) -> str:
    return inputs

@evaltrace.suite('datasets/good.yaml', {settings})
async def test_bad({params}) -> str:
    return 'x'

@evaltrace.suite('datasets/good.yaml')
async def test_after(inputs: str) -> str:
    return inputs
"""

OTHER_MODULE = """
import evaltrace

@evaltrace.suite('datasets/good.yaml')
async def test_other(inputs: str) -> str:
    return inputs
"""


@pytest.mark.parametrize(
    ('settings', 'params', 'message'),
    [
        (
            'gate=evaltrace.Gate(min_pass_rate=1.5)',
            'inputs: str',
            'gate: min_pass_rate is a fraction between 0 and 1, got 1.5',
        ),
        ('gate=evaltrace.Gate(max_errors=-1)', 'inputs: str', 'gate: max_errors must be >= 0, got -1'),
        ('gate=evaltrace.Gate(max_errors=1.5)', 'inputs: str', 'gate: max_errors must be a whole number, got 1.5'),
        ('repeat=0', 'inputs: str', 'repeat must be a whole number >= 1, got 0'),
        ('repeat=2.5', 'inputs: str', 'repeat must be a whole number >= 1, got 2.5'),
        ('repeat=2, pass_k=3', 'inputs: str', 'pass_k must be a whole number between 1 and repeat (2), got 3'),
        ('repeat=2, pass_k=1.5', 'inputs: str', 'pass_k must be a whole number between 1 and repeat (2), got 1.5'),
        ('max_concurrency=0', 'inputs: str', 'max_concurrency must be a whole number >= 1, got 0'),
        ('max_concurrency=2.7', 'inputs: str', 'max_concurrency must be a whole number >= 1, got 2.7'),
        ('record="sometimes"', 'inputs: str', "record must be one of off, none, once, new, all, got 'sometimes'"),
        ('timeout=float("nan")', 'inputs: str', 'timeout must be a number of seconds > 0, got nan'),
        ('timeout=0', 'inputs: str', 'timeout must be a number of seconds > 0, got 0'),
        ('name="n"', '', 'a suite function takes the case inputs as its first parameter; test_bad takes none'),
    ],
    ids=[
        'gate-rate',
        'gate-negative',
        'gate-fractional-count',
        'repeat-0',
        'repeat-fraction',
        'pass-k',
        'pass-k-fraction',
        'max-concurrency',
        'max-concurrency-fraction',
        'record',
        'timeout-nan',
        'timeout-0',
        'no-parameters',
    ],
)
def test_a_bad_suite_errors_alone(project: EvalProject, settings: str, params: str, message: str) -> None:
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_suites.py', SAME_MODULE.format(settings=settings, params=params))
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([f'evaltrace: bad suite: {message}', 'ERROR evals/test_suites.py::test_bad - *'])
    assert 'Traceback' not in result.stdout.str()


def test_a_bad_suite_is_skipped_with_the_others_under_evaltrace_skip(project: EvalProject) -> None:
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_suites.py', SAME_MODULE.format(settings='repeat=0', params='inputs: str'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '--evaltrace-skip')
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(skipped=3)


EVALUATORS_THAT_RAISE = """
import os

from pydantic_evals.evaluators import Evaluator

API_KEY = os.environ['TONE_API_KEY']  # not set: a KeyError at import


class Tone(Evaluator):
    def evaluate(self, ctx):
        return True
"""

USES_EVALUATORS = """
import evaltrace
from my_evaluators import Tone

@evaltrace.suite('datasets/good.yaml', evaluator_types=[Tone])
async def test_toned(inputs: str) -> str:
    return inputs

@evaltrace.suite('datasets/good.yaml')
async def test_plain(inputs: str) -> str:
    return inputs
"""


def test_an_evaluator_module_that_raises_at_import_errors_the_modules_importing_it(project: EvalProject) -> None:
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('my_evaluators.py', EVALUATORS_THAT_RAISE)
    project.write('evals/test_toned.py', USES_EVALUATORS)
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "evaltrace: cannot import evals/test_toned.py: KeyError: 'TONE_API_KEY' (my_evaluators.py:5)",
            'ERROR evals/test_toned.py::import-error - *',
        ]
    )
    assert 'Interrupted' not in result.stdout.str()


def test_a_syntax_error_in_an_eval_module_errors_that_module_only(project: EvalProject) -> None:
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_broken.py', 'import evaltrace\n\ndef test_x(inputs:\n')
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ['*evaltrace: cannot import evals/test_broken.py: SyntaxError: *(evals/test_broken.py:3)']
    )


def test_a_module_without_eval_suites_keeps_pytests_collection_error(project: EvalProject) -> None:
    # Only modules that use evaltrace change: pytest's own rule (a collection error stops the session) stays.
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_plain.py', 'raise RuntimeError("plain")\n')
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()


def test_a_dataset_object_with_no_cases_is_reported_by_evaltrace(project: EvalProject) -> None:
    project.write(
        'evals/test_empty.py',
        """
        import evaltrace
        from pydantic_evals import Dataset

        @evaltrace.suite(Dataset[str, str, None](name='nothing', cases=[]))
        async def test_empty(inputs: str) -> str:
            return inputs
        """,
    )
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*evaltrace: bad dataset: dataset 'nothing': the dataset has no cases*"])


def test_error_items_under_xdist(project: EvalProject) -> None:
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('my_evaluators.py', EVALUATORS_THAT_RAISE)
    project.write('evals/test_toned.py', USES_EVALUATORS)
    project.write('evals/test_suites.py', SAME_MODULE.format(settings='repeat=0', params='inputs: str'))
    project.write('evals/test_other.py', OTHER_MODULE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-n', '2')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            '*evaltrace: bad suite: repeat must be a whole number >= 1, got 0*',
            "*evaltrace: cannot import evals/test_toned.py: KeyError: 'TONE_API_KEY' (my_evaluators.py:5)*",
        ]
    )
    assert project.report()['complete'] is True


HELD_SUITE = """
import asyncio
from pathlib import Path
import pytest
import evaltrace


@pytest.fixture
def resource():
    yield 'open'
    raise RuntimeError('resource teardown boom')


@evaltrace.suite('datasets/held.yaml', max_concurrency=3)
async def test_held(inputs: str, resource: str) -> str:
    if inputs == 'after':  # still running when c0's item is torn down: its fixture teardown is held back
        while not Path('c0-torn-down').exists():
            await asyncio.sleep(0.01)
    return resource
"""

NEXT_SUITE = """
@evaltrace.suite('datasets/good.yaml')
async def test_next(inputs: str) -> str:
    return inputs
"""

PLAIN_TEST = """
def test_plain():
    pass
"""

TORN_DOWN_CONFTEST = """
from pathlib import Path

def pytest_runtest_logreport(report):
    if report.nodeid.endswith('test_held[c0]') and report.when == 'teardown':
        Path('c0-torn-down').touch()
"""


@pytest.mark.parametrize(
    'after', [[NEXT_SUITE, PLAIN_TEST], [PLAIN_TEST, NEXT_SUITE]], ids=['suite-next', 'plain-next']
)
def test_a_held_fixture_teardown_that_raises_errors_its_suite_runs_last_item(
    project: EvalProject, after: list[str]
) -> None:
    # The teardown runs once the suite run's last case has ended, at the teardown of its last item: that item
    # reports it, and pytest's teardown goes on, so the items after it (a suite, a plain test) are not touched.
    project.dataset(
        'held',
        [{'name': f'c{i}', 'inputs': x, 'expected_output': 'open'} for i, x in enumerate(['now', 'after', 'after'])],
        ['EqualsExpected'],
    )
    project.dataset('good', [{'name': f'g{i}', 'inputs': f'g{i}'} for i in range(2)])
    project.write('evals/test_held.py', HELD_SUITE + ''.join(after))
    project.write('evals/conftest.py', TORN_DOWN_CONFTEST)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-rA')
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(passed=6, errors=1)
    summary = set(result.stdout.lines)
    passed = ['test_held[c0]', 'test_held[c1]', 'test_held[c2]', 'test_next[g0]', 'test_next[g1]', 'test_plain']
    assert {f'PASSED evals/test_held.py::{name}' for name in passed} <= summary, out
    assert 'ERROR evals/test_held.py::test_held[c2] - RuntimeError: resource teardown boom' in summary, out
    assert out.count('ERROR at teardown of test_held[c2]') == 1, out
    assert 'not torn down properly' not in out
    report = project.report()
    assert report['other_failures'] == ['evals/test_held.py::test_held[c2]']
    assert report['verdict']['exit_status'] == 1 and report['verdict']['reason'] == '1 other test(s) failed'
    assert {c['case']: c['status'] for c in report['cases']} == dict.fromkeys(['c0', 'c1', 'c2', 'g0', 'g1'], 'passed')
