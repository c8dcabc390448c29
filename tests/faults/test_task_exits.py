"""A task raising `SystemExit`, `GeneratorExit` or `KeyboardInterrupt` ends only its own case, with its reason."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace

RAISES = {'exit': lambda: SystemExit(3), 'genexit': lambda: GeneratorExit('closed'), 'ctrl-c': lambda: KeyboardInterrupt('from the task')}

@evaltrace.suite('datasets/cases.yaml')
async def test_async(inputs: str) -> str:
    if inputs in RAISES:
        raise RAISES[inputs]()
    return inputs

@evaltrace.suite('datasets/cases.yaml')
def test_sync(inputs: str) -> str:
    if inputs in RAISES:
        raise RAISES[inputs]()
    return inputs

@evaltrace.suite('datasets/cases.yaml')
async def test_after(inputs: str) -> str:
    return inputs
"""


@pytest.mark.parametrize('xdist', [False, True], ids=['serial', 'xdist'])
def test_a_task_raising_a_base_exception_ends_only_its_case(project: EvalProject, xdist: bool) -> None:
    names = ['before', 'exit', 'genexit', 'ctrl-c', 'after']
    project.dataset('cases', [{'name': n, 'inputs': n} for n in names])
    project.write('evals/test_exits.py', SUITE)
    args = ['-n', '2'] if xdist else []
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', *args)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out  # not 2 (interrupted), not 7, not a harness error
    # Every other case, of the same suites and of the one after, passes: 3 suites x 5 cases, 6 of them raising.
    result.assert_outcomes(passed=9, failed=6)
    report = project.report()
    assert report['complete'] is True
    by_id = {c['nodeid']: c for c in report['cases']}
    assert len(by_id) == 15
    for suite in ('test_async', 'test_sync'):
        for name, reason in [
            ('exit', 'SystemExit: 3'),
            ('genexit', 'GeneratorExit: closed'),
            ('ctrl-c', 'KeyboardInterrupt: from the task'),
        ]:
            case = by_id[f'evals/test_exits.py::{suite}[{name}]']
            assert case['status'] == 'error', case
            assert case['error']['message'] == reason, case['error']
            assert case['failures'] == [reason]
        for name in ('before', 'after'):
            assert by_id[f'evals/test_exits.py::{suite}[{name}]']['status'] == 'passed'
    assert all(by_id[f'evals/test_exits.py::test_after[{n}]']['status'] == 'passed' for n in names)
