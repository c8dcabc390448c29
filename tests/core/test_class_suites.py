"""Suites as methods of a test class: collected, one item per case, run by the scheduler as one suite run, serially
and under `-n 2`, with the class's fixtures and its instance (`self`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import EvalProject

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
