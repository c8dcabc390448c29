"""An xdist worker that dies mid-run: what it finished is not lost, and the report names what has no result."""

from __future__ import annotations

from evaltrace.session.state import EXIT_HARNESS_ERROR
from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_w(inputs: str) -> str:
    return inputs
"""

# A worker runs its suite's cases as one batch: `c` and `d` are still running when the worker dies.
SLOW_SUITE = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_w(inputs: str) -> str:
    if inputs in ('c', 'd'):
        await asyncio.sleep(30)
    return inputs
"""

# The worker dies once the case `die` has finished (and is journaled), before its result reaches the controller.
KILLER = """
import os, signal
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == 'call' and item.nodeid.endswith('[die]') and hasattr(item.config, 'workerinput'):
        os.kill(os.getpid(), signal.SIGKILL)
    return report
"""


def test_a_dead_workers_finished_cases_are_kept_and_the_lost_ones_named(project: EvalProject) -> None:
    project.dataset('cases', [{'name': n, 'inputs': n} for n in ('a', 'b', 'die', 'c', 'd')])
    project.write('evals/test_w.py', SUITE)
    project.write('evals/conftest.py', KILLER)
    result = project.pytester.runpytest_subprocess(
        'evals', '-p', 'no:cacheprovider', '-n', '2', '--max-worker-restart=0'
    )
    out = result.stdout.str()
    assert "worker 'gw" in out and 'crashed' in out
    report = project.report()
    cases = {c['nodeid']: c for c in report['cases']}
    # `die` finished before its worker died: its result comes from the worker's journal.
    assert cases['evals/test_w.py::test_w[die]']['status'] == 'passed'
    missing = report.get('missing', [])
    assert set(missing) | set(cases) == set(report['expected']) and not set(missing) & set(cases)
    assert report['complete'] is (not missing)
    if missing:
        assert result.ret == EXIT_HARNESS_ERROR
        assert f'INCOMPLETE: {len(missing)} case(s) with no result: {missing[0]}' in out
    else:
        assert result.ret == 1  # pytest's own failure of the item whose worker crashed


def test_a_lone_dead_worker_still_leaves_an_incomplete_report(project: EvalProject) -> None:
    # With one worker there is no other to tell the controller which cases to expect: the worker's list must reach it
    # before the worker can die (a dead worker's end-of-run output never arrives).
    project.dataset('cases', [{'name': n, 'inputs': n} for n in ('a', 'b', 'die', 'c', 'd')])
    project.write('evals/test_w.py', SLOW_SUITE)
    project.write('evals/conftest.py', KILLER)
    result = project.pytester.runpytest_subprocess(
        'evals', '-p', 'no:cacheprovider', '-n', '1', '--max-worker-restart=0'
    )
    report = project.report()
    assert len(report['expected']) == 5
    assert report['complete'] is False
    assert set(report['missing']) == {'evals/test_w.py::test_w[c]', 'evals/test_w.py::test_w[d]'}
    assert result.ret == EXIT_HARNESS_ERROR
    assert 'INCOMPLETE: 2 case(s) with no result: evals/test_w.py::test_w[c]' in result.stdout.str()
