"""Suites as methods of a test class: collected, one item per case, run by the scheduler as one suite run, serially
and under `-n 2`, with the class's fixtures and its instance (`self`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.eval_project import EvalProject

CLASS_SUITE = """
import asyncio
import evaltrace
import pytest


@pytest.fixture
def suffix() -> str:
    return '!'


class TestSupport:
    greeting = 'hi'

    @pytest.fixture(autouse=True)
    def _remember(self) -> None:
        self.seen = 'set by an autouse method fixture'

    @evaltrace.suite('datasets/alpha.yaml')
    async def test_async(self, inputs: str, suffix: str) -> str:
        assert self.greeting == 'hi' and self.seen.startswith('set by')
        await asyncio.sleep(0.01)
        return inputs.upper() if not inputs.endswith('3') else 'wrong'

    @evaltrace.suite('datasets/alpha.yaml', name='sync_suite')
    def test_sync(self, inputs: str) -> str:
        return inputs.upper()

    @staticmethod
    @evaltrace.suite('datasets/alpha.yaml')
    def test_static(inputs: str) -> str:
        return inputs.upper()


@pytest.mark.parametrize('flavour', ['x', 'y'])
class TestParametrized:
    @evaltrace.suite('datasets/alpha.yaml')
    async def test_flavoured(self, inputs: str, flavour: str) -> str:
        return inputs.upper()
"""


def _run(project: EvalProject, upper_cases: Any, *args: str) -> pytest.RunResult:
    project.dataset('alpha', upper_cases(4), ['EqualsExpected'])
    project.write('evals/test_classes.py', CLASS_SUITE)
    return project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-p', 'no:randomly', *args)


@pytest.mark.parametrize('workers', [[], ['-n', '2']], ids=['serial', 'xdist'])
def test_suites_in_a_test_class_run_each_case_as_its_own_item(
    project: EvalProject, upper_cases: Any, workers: list[str]
) -> None:
    result = _run(project, upper_cases, '-v', *workers)
    # 4 suites x 4 cases (+1 suite run per flavour); only test_async's c3 returns a wrong answer.
    result.assert_outcomes(passed=19, failed=1)
    result.stdout.fnmatch_lines(['FAILED evals/test_classes.py::TestSupport::test_async?c3? - *'])
    report = project.report()
    by_id = {c['nodeid']: c for c in report['cases']}
    assert len(by_id) == 20
    assert by_id['evals/test_classes.py::TestSupport::test_async[c0]']['status'] == 'passed'
    assert by_id['evals/test_classes.py::TestSupport::test_async[c3]']['status'] == 'failed'
    assert by_id['evals/test_classes.py::TestSupport::test_static[c1]']['status'] == 'passed'
    suites = {s['suite'] for s in report['suites']}
    assert suites == {
        'evals/test_classes.py::TestSupport::test_async',
        'evals/test_classes.py::TestSupport::test_sync',
        'evals/test_classes.py::TestSupport::test_static',
        'evals/test_classes.py::TestParametrized::test_flavoured[x]',
        'evals/test_classes.py::TestParametrized::test_flavoured[y]',
    }
    assert {c['suite'] for c in report['cases'] if 'TestParametrized' in c['nodeid']} == {
        'evals/test_classes.py::TestParametrized::test_flavoured[x]',
        'evals/test_classes.py::TestParametrized::test_flavoured[y]',
    }
    assert all(c['trace_id'] for c in report['cases'])


def test_a_class_suite_collects_under_collect_only(project: EvalProject, upper_cases: Any) -> None:
    result = _run(project, upper_cases, '--co', '-q')
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            'evals/test_classes.py::TestSupport::test_async[[]c0[]]',
            'evals/test_classes.py::TestSupport::test_sync[[]c3[]]',
        ]
    )
    assert '20 tests collected' in result.stdout.str()


INTERLEAVED = """
import asyncio

import evaltrace
import pytest
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected

ds = Dataset(
    name='cls',
    cases=[Case(name=w, inputs=w, expected_output=w * 2) for w in ['x', 'y']],
    evaluators=[EqualsExpected()],
)


@pytest.fixture
def factor() -> int:
    return 2


@pytest.fixture
def live(extra: str):
    state = {'open': True, 'extra': extra}
    yield state
    state['open'] = False


@pytest.mark.parametrize('extra', ['', 'b'])
class TestCls:
    @pytest.fixture(autouse=True)
    def _setup(self) -> None:
        self.mult = 2

    @evaltrace.suite(ds)
    async def test_double(self, word: str, factor: int, extra: str) -> str:
        await asyncio.sleep(0.3 if word == 'y' else 0)  # case y outlives item x: the suite run is still running
        return word * self.mult * (factor // 2) + extra


class TestOnMethod:
    @pytest.fixture(autouse=True)
    def _setup(self) -> None:
        self.mult = 2

    @pytest.mark.parametrize('extra', ['', 'b'])
    @evaltrace.suite(ds)
    async def test_double(self, word: str, extra: str) -> str:
        await asyncio.sleep(0.3 if word == 'y' else 0)
        return word * self.mult + extra


@pytest.mark.parametrize('extra', ['', 'b'])
@evaltrace.suite(ds)
async def test_plain(word: str, factor: int, extra: str, live: dict[str, object]) -> str:
    await asyncio.sleep(0.3 if word == 'y' else 0)
    assert live['open'] and live['extra'] == extra, live
    return word * factor + extra
"""


@pytest.mark.parametrize('workers', [[], ['-n', '2']], ids=['serial', 'xdist'])
def test_interleaved_suite_runs_each_get_their_own_fixtures_and_instance(
    project: EvalProject, workers: list[str]
) -> None:
    """pytest interleaves the items of two suite runs (`[x-]`, `[x-b]`, `[y-]`, `[y-b]`): the second run's holder
    gets fresh function-scoped fixtures (its instance's autouse fixture runs), and the first run's fixtures are not
    torn down under its running cases."""
    project.write('evals/test_interleaved.py', INTERLEAVED)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-p', 'no:randomly', *workers)
    report = project.report()
    got = {c['nodeid'].split('::', 1)[1]: (c['status'], c['output']) for c in report['cases']}
    expected: dict[str, tuple[str, str]] = {}
    for test in ('TestCls::test_double', 'TestOnMethod::test_double', 'test_plain'):
        for word in 'xy':
            expected[f'{test}[{word}-]'] = ('passed', word * 2)
            expected[f'{test}[{word}-b]'] = ('failed', word * 2 + 'b')
    assert got == expected
    result.assert_outcomes(passed=6, failed=6)
    suites = {s['suite'].split('::', 1)[1] for s in report['suites']}
    assert suites == {
        f'{t}[{e}]' for t in ('TestCls::test_double', 'TestOnMethod::test_double', 'test_plain') for e in ('', 'b')
    }
