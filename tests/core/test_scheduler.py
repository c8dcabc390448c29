"""The session's scheduler: suite runs (parametrized suites), overlap, streaming, -x, and a blocking case."""

from __future__ import annotations

import gc
import json
import re
from typing import Any

import pytest

from tests.support.eval_project import EvalProject

PARAMETRIZED = """
import pytest
import evaltrace

@pytest.mark.parametrize('shout', [True, False])
@evaltrace.suite('datasets/words.yaml')
def test_words(inputs: str, shout: bool) -> str:
    return inputs.upper() if shout else inputs
"""

OVERRIDDEN = """
import pytest
import evaltrace
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

agent = Agent(TestModel(custom_output_text='default'))


def replying(text: str) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(respond)


@pytest.fixture(params=['alpha', 'beta'])
def model(request: pytest.FixtureRequest):
    with agent.override(model=replying(request.param)):
        yield request.param


@evaltrace.suite('datasets/words.yaml')
async def test_models(inputs: str, model: str) -> str:
    result = await agent.run(inputs)
    return result.output
"""


def _outputs(project: EvalProject) -> dict[str, Any]:
    return {c['nodeid']: (c['suite'], c['output']) for c in project.report()['cases']}


@pytest.mark.parametrize('workers', [None, '2'])
def test_parametrize_marks_give_each_suite_run_its_own_values(
    project: EvalProject, upper_cases: Any, workers: str | None
) -> None:
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write('evals/test_words.py', PARAMETRIZED)
    args = ['evals', '-p', 'no:cacheprovider', *(['-n', workers] if workers else [])]
    result = project.pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2, failed=2)
    base = 'evals/test_words.py::test_words'
    assert _outputs(project) == {
        f'{base}[c0-True]': (f'{base}[True]', 'WORD0'),
        f'{base}[c1-True]': (f'{base}[True]', 'WORD1'),
        f'{base}[c0-False]': (f'{base}[False]', 'word0'),
        f'{base}[c1-False]': (f'{base}[False]', 'word1'),
    }
    suites = {s['suite']: s['stats']['passed'] for s in project.report()['suites']}
    assert suites == {f'{base}[True]': 2, f'{base}[False]': 0}


def test_a_parametrized_fixture_overriding_the_agent_applies_to_its_own_suite_run(
    project: EvalProject, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(3))
    project.write('evals/test_models.py', OVERRIDDEN)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=6)
    base = 'evals/test_models.py::test_models'
    by_suite: dict[str, set[str]] = {}
    for suite, output in _outputs(project).values():
        by_suite.setdefault(suite, set()).add(output)
    assert by_suite == {f'{base}[alpha]': {'alpha'}, f'{base}[beta]': {'beta'}}


def test_baseline_keeps_suite_runs_apart(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write('evals/test_words.py', PARAMETRIZED)
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    saved = project.pytester.run('evaltrace', 'baseline', 'save')
    assert saved.ret == 0, saved.stderr.str()
    baseline = json.loads((project.path / 'evals/baseline.json').read_text())
    text = json.dumps(baseline)
    assert 'test_words[True]' in text
    assert 'test_words[False]' in text


TIMED = """
import asyncio, json, time
from pathlib import Path
import evaltrace

def log(**event):
    with Path('events.jsonl').open('a') as f:
        f.write(json.dumps({{**event, 't': time.time()}}) + '\\n')

@evaltrace.suite('datasets/{name}.yaml'{options})
async def test_{name}(inputs: float) -> float:
    log(suite='{name}', case=inputs, what='start')
    await asyncio.sleep(inputs)
    log(suite='{name}', case=inputs, what='end')
    return inputs
"""

REPORTED = """
import json
from pathlib import Path

def pytest_runtest_logreport(report):
    if report.when == 'call':
        with Path('events.jsonl').open('a') as f:
            f.write(json.dumps({'nodeid': report.nodeid, 'what': 'report'}) + '\\n')
        Path('reported-' + report.nodeid.rsplit('[', 1)[1].rstrip(']')).touch()
"""

# A case whose inputs are 'after-X' ends only once the file X exists (written by another case or a hook): an order
# that holds however slow the machine, where a sleep would only make it likely. Bounded (60 s), so that a run in which
# X never comes still ends, and the test's check of the log's order fails.
UNTIL = """
import asyncio, json, time
from pathlib import Path
import evaltrace

def log(**event):
    with Path('events.jsonl').open('a') as f:
        f.write(json.dumps(event) + '\\n')

@evaltrace.suite('datasets/{name}.yaml')
async def test_{name}(inputs: str) -> str:
    log(suite='{name}', case=inputs, what='start')
    Path(f'started-{{inputs}}').touch()
    if inputs.startswith('after-'):
        marker, deadline = Path(inputs.removeprefix('after-')), time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    log(suite='{name}', case=inputs, what='end')
    return inputs
"""


def _events(project: EvalProject) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (project.path / 'events.jsonl').read_text().splitlines()]


def _sleep_cases(*delays: float) -> list[dict[str, Any]]:
    return [{'name': f's{i}', 'inputs': d} for i, d in enumerate(delays)]


def test_cases_of_different_suites_overlap(project: EvalProject) -> None:
    # The first suite's cases end only once a case of the second has started: they overlap, or the first wait out
    # their bound and end before the second starts.
    project.dataset('first', [{'name': f's{i}', 'inputs': 'after-started-x'} for i in range(2)])
    project.dataset('second', [{'name': f's{i}', 'inputs': w} for i, w in enumerate('xy')])
    for name in ('first', 'second'):
        project.write(f'evals/test_{name}.py', UNTIL.format(name=name))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=4)
    events = _events(project)  # in the order they happened
    first_end = max(i for i, e in enumerate(events) if e['suite'] == 'first' and e['what'] == 'end')
    second_start = min(i for i, e in enumerate(events) if e['suite'] == 'second' and e['what'] == 'start')
    assert second_start < first_end  # the second suite's cases started while the first suite's still ran


def test_an_item_reports_as_soon_as_its_own_case_has_finished(project: EvalProject) -> None:
    # The slow case ends only once the fast case's item has reported (or after its bound, if it never does).
    project.dataset('mixed', [{'name': 's0', 'inputs': 'fast'}, {'name': 's1', 'inputs': 'after-reported-s0'}])
    project.write('evals/test_mixed.py', UNTIL.format(name='mixed'))
    project.write('evals/conftest.py', REPORTED)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=2)
    events = _events(project)  # in the order they happened
    fast_reported = next(i for i, e in enumerate(events) if e.get('nodeid', '').endswith('[s0]'))
    slow_ended = next(i for i, e in enumerate(events) if e.get('case') == 'after-reported-s0' and e['what'] == 'end')
    assert fast_reported < slow_ended


def test_exitfirst_cancels_running_cases_and_starts_no_more(project: EvalProject) -> None:
    # The others would run 30 s: -x must stop them long before any ends, however slow the machine (cancelled at once).
    cases = [{'name': 'bad', 'inputs': 0.0, 'expected_output': -1.0}, *_sleep_cases(30, 30.1, 30.2, 30.3, 30.4)]
    project.dataset('slow', cases, ['EqualsExpected'])
    project.write('evals/test_slow.py', TIMED.format(name='slow', options=', max_concurrency=2'))
    result = project.pytester.runpytest_inprocess('evals', '-x', '-p', 'no:cacheprovider')
    result.assert_outcomes(failed=1)
    # 'bad' freed its slot before pytest saw its failure, so a third case may have started; no more did.
    # A case the scheduler started may be cancelled before its task's first line logs 'start': it is still
    # reported cancelled, so the task's own log bounds the cancelled cases from below.
    names = {0.0: 'bad', 30: 's0', 30.1: 's1', 30.2: 's2', 30.3: 's3', 30.4: 's4'}
    body_started = {names[e['case']] for e in _events(project) if e['what'] == 'start'} - {'bad'}
    report = project.report()
    assert report['complete'] is False
    name = 'evals/test_slow.py::test_slow[{}]'.format
    cancelled, not_started = set(report['cancelled']), set(report['not_started'])
    assert {name(c) for c in body_started} <= cancelled
    assert len(cancelled) in (1, 2)
    assert not cancelled & not_started
    assert cancelled | not_started == {name(f's{i}') for i in range(5)}
    assert [c['case'] for c in report['cases']] == ['bad']


BLOCKING = """
import asyncio, time
import evaltrace

@evaltrace.suite('datasets/block.yaml', timeout=2)
async def test_block(inputs: str) -> str:
    if inputs == 'block':
        time.sleep(2.5)  # blocks the event loop: a sync call in async code
    else:
        await asyncio.sleep(0.1)
    return inputs
"""


def test_a_blocking_case_fails_only_itself(project: EvalProject) -> None:
    project.dataset('block', [{'name': n, 'inputs': n} for n in ('block', 'a', 'b', 'c', 'd')])
    project.write('evals/test_block.py', BLOCKING)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=4, failed=1)
    blocker = project.cases()['block']
    assert blocker['status'] == 'error'
    # 2.5 s of sleep, measured by a watchdog: more on a loaded machine, never less than the 2 s timeout
    blocked = re.search(r'blocked the event loop for (\d+\.\d) s', blocker['error']['message'])
    assert blocked is not None and float(blocked.group(1)) >= 2.0
    assert all(project.cases()[n]['status'] == 'passed' for n in 'abcd')


SLOW_EVALUATOR = """
import asyncio, time
from dataclasses import dataclass
import evaltrace
from pydantic_evals import Dataset, Case
from pydantic_evals.evaluators import Evaluator, EvaluatorContext


@dataclass
class SlowCheck(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        if ctx.inputs == 'slow':
            time.sleep(2.5)  # a sync evaluator that blocks (a database, a model call)
        return True


dataset = Dataset(name='evaluated', cases=[Case(name=n, inputs=n) for n in ('slow', 'a', 'b', 'c', 'd')], evaluators=[SlowCheck()])


@evaltrace.suite(dataset, timeout=2)
async def test_evaluated(inputs: str) -> str:
    await asyncio.sleep(0.1)
    return inputs
"""


def test_a_slow_sync_evaluator_runs_off_the_loop_and_fails_only_its_case(project: EvalProject) -> None:
    project.write('evals/test_evaluated.py', SLOW_EVALUATOR)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=4, failed=1)
    assert project.cases()['slow']['error']['message'].startswith('TimeoutError: timed out after 2 s')


HELD = """
import asyncio
from pathlib import Path
import pytest
import evaltrace

events = []


@pytest.fixture
def resource():
    res = {'open': True}
    events.append('setup')
    yield res
    res['open'] = False
    events.append('teardown')


@evaltrace.suite('datasets/held.yaml', max_concurrency=3)
async def test_held(inputs: str, resource: dict) -> str:
    if inputs == 'after':  # ends only once the first item (whose fixture values the cases share) was torn down
        while not Path('c0-torn-down').exists():
            await asyncio.sleep(0.01)
    return 'open' if resource['open'] else 'closed'


def test_after_all():
    assert events == ['setup', 'teardown']
"""

HELD_CONFTEST = """
from pathlib import Path

def pytest_runtest_logreport(report):
    if report.nodeid.endswith('[c0]') and report.when == 'teardown':
        Path('c0-torn-down').touch()
"""


def test_function_scoped_fixtures_live_until_the_suite_runs_last_case_ends(project: EvalProject) -> None:
    # c0 ends first and its item reports and is torn down at once; the fixture its suite run shares lives on.
    cases = [
        {'name': f'c{i}', 'inputs': inputs, 'expected_output': 'open'}
        for i, inputs in enumerate(['now', 'after', 'after'])
    ]
    project.dataset('held', cases, ['EqualsExpected'])
    project.write('evals/test_held.py', HELD)
    project.write('evals/conftest.py', HELD_CONFTEST)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=4)
    assert {c['case']: c['output'] for c in project.report()['cases']} == {'c0': 'open', 'c1': 'open', 'c2': 'open'}


def test_the_heap_frozen_while_cases_run_is_given_back_to_the_collector(project: EvalProject) -> None:
    # The heap is left out of full collections while cases run and through the session's end (gc.freeze); a
    # process that goes on after pytest (pytester, an IDE) must get it back.
    project.dataset('sleepy', _sleep_cases(0.0, 0.0))
    project.write('evals/test_sleepy.py', TIMED.format(name='sleepy', options=''))
    before = gc.get_freeze_count()
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=2)
    assert gc.get_freeze_count() == before


def test_a_case_cancelled_before_its_first_step_still_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """`-x` hung about one run in seven: a case whose task was cancelled (`cancel_all`) after it was created and
    before it first ran never ran its body, so its future was never resolved and the item waiting on it waited
    forever. Here the loop is held so that the dispatch and the cancel queue up back to back: the task is created,
    then cancelled before its first step, every time."""
    import asyncio
    import concurrent.futures
    import contextvars
    import threading

    from evaltrace.schedule.scheduler import CaseJob, Lane, Scheduler

    scheduler = Scheduler(cap=4)
    loop = scheduler._loop  # pyright: ignore[reportPrivateUsage]
    held = threading.Event()
    loop.call_soon_threadsafe(held.wait, 60)
    # The loop is let go only once the cancel is queued behind the dispatch (not after a fixed delay, which a loaded
    # machine could outlast between the submit and the cancel: the case would then run to its end first).
    queue = loop.call_soon_threadsafe

    def queue_then_release(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        handle = queue(callback, *args, **kwargs)
        if getattr(callback, '__name__', None) == 'cancel':
            held.set()
        return handle

    monkeypatch.setattr(loop, 'call_soon_threadsafe', queue_then_release)

    async def case() -> str:
        return 'ran'

    job = CaseJob(0, Lane(cap=4), case, scheduler.job_context(contextvars.copy_context()))
    scheduler.submit([job])
    try:
        scheduler.cancel_all(timeout=60)
        assert held.is_set()  # released by the cancel, not by the hold's own bound
        with pytest.raises((asyncio.CancelledError, concurrent.futures.CancelledError)):
            job.future.result(timeout=60)
        assert job.lane.running == 0
    finally:
        held.set()
        scheduler.close()


BLOCKING_AFTER_A_YIELD = """
import asyncio, time
import evaltrace

@evaltrace.suite('datasets/block.yaml', timeout=1)
async def test_block(inputs: str) -> str:
    await asyncio.sleep(0)  # every case yields once: the others' next steps are queued when the block begins
    if inputs == 'block':
        time.sleep(2.5)
    return inputs
"""


def test_a_case_whose_next_step_was_queued_before_a_block_is_not_timed_out_by_it(project: EvalProject) -> None:
    # The innocent cases' steps run as soon as the block ends, before the loop watch's heartbeat gives the blocked
    # time back to their timeouts: they ended past their deadline and were timed out for the blocker's 2.5 s.
    project.dataset('block', [{'name': n, 'inputs': n} for n in ('block', 'a', 'b')])
    project.write('evals/test_block.py', BLOCKING_AFTER_A_YIELD)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    statuses = {n: c['status'] for n, c in project.cases().items()}
    assert statuses == {'block': 'error', 'a': 'passed', 'b': 'passed'}, result.stdout.str()
    assert 'blocked the event loop' in project.cases()['block']['error']['message']


def _held_by(obj: object, skip: object, depth: int = 2) -> list[object]:
    """What `obj` refers to, `depth` references deep (a partial's arguments are in a tuple), not through `skip`."""
    import gc

    found: list[object] = []
    level = [obj]
    for _ in range(depth):
        level = [ref for o in level for ref in gc.get_referents(o) if ref is not skip]
        found += level
    return found


def test_a_case_tasks_repr_does_not_spell_out_its_case() -> None:
    """anyio's `CancelScope.cancel` formats the cancelled task's repr, callbacks included (a pydantic-ai agent run
    cancels scopes on every run). A callback that held the case's job spelled out the case's whole world, and
    `pytest evals/` spun in reprs for minutes."""
    import asyncio
    import contextvars
    import functools
    import threading
    import time

    from evaltrace.schedule.scheduler import CaseJob, Lane, Scheduler

    release = threading.Event()

    async def case(payload: list[str]) -> int:
        # Runs until the task has been looked at (a fixed sleep could end first on a loaded machine).
        while not release.is_set():
            await asyncio.sleep(0.01)
        return len(payload)

    scheduler = Scheduler(cap=1)
    job = CaseJob(0, Lane(cap=1), functools.partial(case, ['x' * 1000] * 1000), contextvars.copy_context())
    scheduler.submit([job])
    try:
        deadline = time.monotonic() + 60
        while not scheduler._jobs and time.monotonic() < deadline:  # pyright: ignore[reportPrivateUsage]
            time.sleep(0.01)
        [task] = list(scheduler._jobs)  # pyright: ignore[reportPrivateUsage]
        assert len(repr(task)) < 2000
        # Both guards: the job's repr leaves out its case, and no done callback of the task holds the job (a
        # `functools.partial(..., job)` would, and would be formatted with whatever a job's repr ever shows).
        assert len(repr(job)) < 200
        callbacks: list[tuple[object, object]] = task._callbacks  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
        assert callbacks
        assert not [cb for cb, _ in callbacks if job in _held_by(cb, skip=scheduler)]
        release.set()
        assert job.future.result(timeout=60) == 1000
    finally:
        release.set()
        scheduler.close()


def test_the_loop_watch_beats_only_while_cases_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each heartbeat takes the interpreter's lock from pytest's thread (and wakes two threads): an idle loop has no
    case to blame for a block, nor any timeout to give time back to, so the watch must not beat then."""
    import asyncio
    import contextvars
    import threading
    import time

    from evaltrace.schedule.scheduler import CaseJob, Lane, LoopWatch, Scheduler

    beats: list[float] = []
    beat = LoopWatch._beat  # pyright: ignore[reportPrivateUsage]

    def counted(self: LoopWatch, posted: float, answered: threading.Event) -> None:
        beats.append(time.monotonic())
        beat(self, posted, answered)

    monkeypatch.setattr(LoopWatch, '_beat', counted)
    scheduler = Scheduler(cap=1)
    try:
        time.sleep(0.5)  # ten beat intervals with no case
        assert beats == []
        started = threading.Event()

        async def case() -> str:
            started.set()
            while len(beats) < 3:  # the watch beats while it runs (no fixed sleep: a loaded machine is slow)
                await asyncio.sleep(0.01)
            return 'ran'

        job = CaseJob(0, Lane(cap=1), case, scheduler.job_context(contextvars.copy_context()))
        scheduler.submit([job])
        assert job.future.result(timeout=60) == 'ran'
        time.sleep(0.3)  # a beat posted as the case ended may still run
        settled = len(beats)
        time.sleep(0.5)
        assert len(beats) == settled
    finally:
        scheduler.close()


def test_an_item_whose_case_is_done_lets_the_busy_loop_run_first() -> None:
    """While the loop runs cases and pytest's thread reports items, both need the interpreter's lock, which then
    changed hands at every system call of either (about twelve times a case, against pytest's own two): an item
    whose result is ready waits (a slice at most) until the loop has nothing to run."""
    import contextvars
    import threading
    import time

    from evaltrace.schedule.scheduler import CaseJob, Lane, Scheduler

    scheduler = Scheduler(cap=2)
    order: list[str] = []
    started = threading.Event()

    async def ready() -> str:
        return 'ready'

    async def busy() -> str:
        started.set()
        time.sleep(0.1)  # the loop is busy (it runs this case's code) for 0.1 s, well inside one wait slice
        order.append('loop idle')
        return 'busy'

    try:
        done = CaseJob(0, Lane(cap=1), ready, scheduler.job_context(contextvars.copy_context()))
        scheduler.submit([done])
        assert done.future.result(timeout=60) == 'ready'
        job = CaseJob(1, Lane(cap=1), busy, scheduler.job_context(contextvars.copy_context()))
        scheduler.submit([job])
        assert started.wait(60)
        assert scheduler.wait(done.future) == 'ready'
        order.append('item reported')
        assert order == ['loop idle', 'item reported']
        assert scheduler.wait(job.future) == 'busy'
    finally:
        scheduler.close()
