"""Per-case timeouts (async and sync tasks, evaluators) and harness bugs contained to their case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.eval_project import EvalProject

TIMEOUT_SUITE = """
import asyncio, time, threading
from dataclasses import dataclass
import evaltrace
from pydantic_evals.evaluators import Evaluator, EvaluatorContext

@dataclass
class SlowJudge(Evaluator):
    async def evaluate(self, ctx: EvaluatorContext) -> bool:
        if ctx.inputs == 'slow-judge':
            await asyncio.sleep(60)
        return True

@evaltrace.suite('datasets/cases.yaml', evaluator_types=[SlowJudge], timeout=0.5)
async def test_async(inputs: str) -> str:
    if inputs == 'hang':
        await asyncio.sleep(60)
    return inputs

@evaltrace.suite('datasets/sync.yaml', timeout=0.5)
def test_sync(inputs: str) -> str:
    if inputs == 'hang':
        threading.Event().wait()  # never returns: the thread is abandoned
    return inputs
"""


def test_timeout_covers_task_and_evaluators_and_other_cases_go_on(project: EvalProject) -> None:
    cases = [{'name': n, 'inputs': n} for n in ('ok', 'hang', 'slow-judge')]
    project.dataset('cases', cases, ['SlowJudge'])
    project.dataset('sync', [{'name': 'sync-ok', 'inputs': 'ok'}, {'name': 'sync-hang', 'inputs': 'hang'}])
    project.write('evals/test_t.py', TIMEOUT_SUITE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 1
    got = project.cases()
    assert {k: v['status'] for k, v in got.items()} == {
        'ok': 'passed',
        'hang': 'error',
        'slow-judge': 'error',
        'sync-ok': 'passed',
        'sync-hang': 'error',
    }
    for name in ('hang', 'slow-judge', 'sync-hang'):
        assert got[name]['failures'] == ['TimeoutError: timed out after 0.5 s']
        assert len(got[name]['trace_id']) == 32  # the partial trace is kept and named
    assert project.report()['complete'] is True


BUGGY_CONFTEST = """
import evaltrace.run.case as run_module
import evaltrace.results.case as results_module

_judge = run_module.judge
def judge(outcome, min_scores):
    if outcome.inputs == 'judge-bug':
        raise RuntimeError('injected harness bug in the verdict')
    return _judge(outcome, min_scores)
run_module.judge = judge

_to_dict = results_module.CaseResult.to_dict
def to_dict(self):
    import sys
    if self.case == 'report-bug' and sys._getframe(1).f_code.co_name == 'pytest_runtest_makereport':
        raise RuntimeError('injected harness bug in reporting')
    return _to_dict(self)
results_module.CaseResult.to_dict = to_dict
"""

SIMPLE_SUITE = """
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str) -> str:
    return inputs
"""


def test_harness_bug_is_that_cases_error_never_an_internalerror(project: EvalProject) -> None:
    project.dataset('cases', [{'name': n, 'inputs': n} for n in ('a', 'judge-bug', 'b', 'report-bug')])
    project.write('evals/test_s.py', SIMPLE_SUITE)
    project.write('evals/conftest.py', BUGGY_CONFTEST)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    assert 'INTERNALERROR' not in result.stdout.str() + result.stderr.str()
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    got: dict[str, Any] = project.cases()
    assert {k: v['status'] for k, v in got.items()} == {
        'a': 'passed',
        'judge-bug': 'error',
        'b': 'passed',
        'report-bug': 'passed',  # without xdist, no result is serialized onto a test report
    }
    assert 'injected harness bug in the verdict' in got['judge-bug']['error']['traceback']

    # Under xdist a worker ships each result on its test report: a bug there fails that case, and only that case.
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-n', '1')
    assert 'INTERNALERROR' not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the item whose report failed is failed, as pytest says
    result.assert_outcomes(passed=2, failed=2)
    assert 'injected harness bug in reporting' in result.stdout.str()
    got = project.cases()
    # The result that never reached the controller is not lost: it is taken from the worker's journal.
    assert {k: v['status'] for k, v in got.items()} == {
        'a': 'passed',
        'judge-bug': 'error',
        'b': 'passed',
        'report-bug': 'passed',
    }
    assert project.report()['complete'] is True
