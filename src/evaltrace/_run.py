"""Running a suite's selected cases concurrently, each in its own trace, through `Dataset.evaluate`.

Each case is evaluated as a one-case `Dataset.evaluate(...)` call in an empty context: pydantic-evals still runs the
task, the evaluators, retries and lifecycle hooks, and its experiment span is the root of the case's own trace (see
_trace), so no two cases share a trace. evaltrace's own part of a case (its cassette, its verdict on the root span)
runs as the case's lifecycle, around the suite's own lifecycle hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import time
import traceback
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EvaluatorContext
from pydantic_evals.lifecycle import CaseLifecycle
from pydantic_evals.reporting import ReportCase, ReportCaseFailure

from ._faults import run_in_thread
from ._judge import Judged, inputs_hash, jsonable, judge
from ._replay import ReplayError, ReplayStats, cassette_path, use_cassette
from ._results import CaseResult
from ._scrub import SecretScrubber, scrub_case_result
from ._settings import RecordMode
from ._suite import SuiteSpec
from ._trace import CaseTrace, TraceSetup, case_trace

__all__ = ('CaseWork', 'ReplayConfig', 'frozen_heap', 'make_task', 'run_cases')


@dataclass(frozen=True)
class ReplayConfig:
    """Record/replay of model HTTP traffic: the mode and where each case's cassette lives."""

    mode: RecordMode
    root: Path
    scrub_patterns: tuple[str, ...] = ()

    def cassette(self, suite_id: str, work: CaseWork) -> Path:
        module, _, function = suite_id.partition('::')
        return cassette_path(self.root, Path(module).stem, function, work.case_name, work.repeat)


@dataclass(frozen=True)
class CaseWork:
    """One case to run: the dataset case, which repeat it is, and the pytest node it reports to."""

    case: Case[Any, Any, Any]
    case_name: str
    nodeid: str
    repeat: int | None
    repeats: int


@contextlib.contextmanager
def frozen_heap() -> Generator[None]:
    """While a batch runs, keep the objects that were alive before it out of the garbage collector's passes.

    A session with a thousand cases holds a large heap before its first case runs (the collected items, the imported
    modules); every full collection during the batch walked all of it again, about 0.4 s per thousand cases. Frozen
    objects are still alive and used as usual; they are simply not scanned. They are unfrozen after the batch, so
    nothing is held longer than it would be. Does nothing when the heap is already frozen (by the user, or by an
    enclosing batch).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def make_task(fn: Callable[..., Any], fixtures: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The task pydantic-evals calls: the suite function with the case inputs and the fixture values."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_task(inputs: Any) -> Any:
            return await fn(inputs, **fixtures)

        return async_task

    # A sync task runs in a daemon thread that a per-case timeout can abandon (see _faults.run_in_thread);
    # pydantic-evals' own `to_thread.run_sync` cannot be cancelled, so a hung task would hang the suite.
    @functools.wraps(fn)
    async def sync_task(inputs: Any) -> Any:
        return await run_in_thread(fn, inputs, **fixtures)

    return sync_task


def _error_result(
    work: CaseWork, suite_id: str, message: str, tb: str, trace_id: str | None, span_id: str | None
) -> CaseResult:
    return CaseResult(
        suite=suite_id,
        case=work.case_name,
        nodeid=work.nodeid,
        status='error',
        repeat=work.repeat,
        repeats=work.repeats,
        failures=[message],
        error={'type': message.split(':', 1)[0], 'message': message, 'traceback': tb},
        trace_id=trace_id,
        span_id=span_id,
        inputs=jsonable(work.case.inputs),
        expected_output=jsonable(work.case.expected_output),
        metadata=jsonable(work.case.metadata),
        inputs_hash=inputs_hash(work.case.inputs, work.case.expected_output),
    )


class _CaseRun:
    """evaltrace's part of one case, run by pydantic-evals as the case's lifecycle (see `_CaseHooks`).

    The cassette is entered in `setup`, inside the case's trace, so that a corrupt one is this case's error with a
    trace; the verdict is stamped on the root span in `teardown`, the last moment before pydantic-evals ends it.
    """

    def __init__(
        self,
        work: CaseWork,
        trace: CaseTrace,
        spec: SuiteSpec,
        suite_id: str,
        replay: ReplayConfig | None,
        stack: ExitStack,
    ) -> None:
        self.work = work
        self.trace = trace
        self.spec = spec
        self.suite_id = suite_id
        self.replay = replay
        self.stack = stack
        self.replay_stats: ReplayStats | None = None
        self.replay_error: ReplayError | None = None
        self.judged: Judged | None = None

    def hooks(self, case: Case[Any, Any, Any]) -> CaseLifecycle[Any, Any, Any]:
        return _CaseHooks(case, self)

    def enter_cassette(self) -> None:
        if self.replay is None:
            return
        try:
            self.replay_stats = self.stack.enter_context(
                use_cassette(
                    self.replay.cassette(self.suite_id, self.work),
                    mode=self.replay.mode,
                    case=self.work.nodeid,
                    scrub_patterns=self.replay.scrub_patterns,
                )
            )
        except ReplayError as e:  # a corrupt cassette: this case's one-line error, not an internal error
            self.replay_error = e
            raise

    def finish(self, outcome: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any] | None) -> None:
        """Close the cassette (saving what was recorded), judge the case, and stamp the verdict on its root."""
        try:
            self.stack.close()
        finally:
            stamp: dict[str, Any] = {}
            if outcome is None or self.replay_error is not None:  # cancelled (a timeout), or an unreadable cassette
                stamp['evaltrace.status'] = 'error'
            else:
                try:
                    self.judged = _judged(outcome, self.spec.min_scores, self.replay_stats)
                    stamp['evaltrace.status'] = self.judged[0]
                except Exception:  # a harness bug: `_run_one` judges again and reports it as this case's error
                    pass
            if self.replay_stats is not None:
                stamp['evaltrace.replayed'] = self.replay_stats.is_replayed
            self.trace.stamp(stamp)


class _CaseHooks(CaseLifecycle[Any, Any, Any]):
    """The lifecycle pydantic-evals runs for each case: evaltrace's part around the suite's own hooks, if any."""

    def __init__(self, case: Case[Any, Any, Any], run: _CaseRun) -> None:
        super().__init__(case)
        self._run = run
        self._inner: CaseLifecycle[Any, Any, Any] | None = None

    async def setup(self) -> None:
        self._run.enter_cassette()
        user = self._run.spec.lifecycle
        if user is not None:
            # Made here, not in __init__: if the suite's lifecycle cannot be made, the case fails like any setup
            # error, and this lifecycle's teardown still stamps the verdict.
            inner: CaseLifecycle[Any, Any, Any] = user(self.case)
            self._inner = inner
            await inner.setup()

    async def prepare_context(self, ctx: EvaluatorContext[Any, Any, Any]) -> EvaluatorContext[Any, Any, Any]:
        return ctx if self._inner is None else await self._inner.prepare_context(ctx)

    async def teardown(self, result: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any] | None) -> None:
        try:
            if self._inner is not None:
                await self._inner.teardown(result)
        finally:
            self._run.finish(result)


def _judged(
    outcome: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any],
    min_scores: Mapping[str, float],
    replay_stats: ReplayStats | None,
) -> Judged:
    status, failures, assertions, scores, labels, ev_failures, error = judge(outcome, min_scores)
    if replay_stats is not None and replay_stats.error is not None:
        # A cassette miss surfaces inside the task as an exception; name the miss itself.
        status = 'error'
        failures = [str(replay_stats.error), *failures]
        error = {'type': 'CassetteMiss', 'message': str(replay_stats.error), 'traceback': ''}
    return status, failures, assertions, scores, labels, ev_failures, error


async def _run_one(
    work: CaseWork,
    task: Callable[[Any], Any],
    dataset: Dataset[Any, Any, Any],
    spec: SuiteSpec,
    suite_id: str,
    suite_name: str,
    timeout: float | None,
    setup: TraceSetup | None,
    replay: ReplayConfig | None,
) -> CaseResult:
    case = work.case
    if work.repeat is not None:
        case = Case(
            name=f'{work.case_name} [{work.repeat}/{work.repeats}]',
            inputs=case.inputs,
            metadata=case.metadata,
            expected_output=case.expected_output,
            evaluators=case.evaluators,
        )
    one = Dataset[Any, Any, Any](name=dataset.name, cases=[case], evaluators=dataset.evaluators)
    t0 = time.perf_counter()
    attributes = {'suite': suite_name, 'nodeid': work.nodeid, 'dataset': dataset.name}
    with case_trace(f'{suite_name}[{work.case_name}]', attributes, setup) as trace, ExitStack() as stack:
        run = _CaseRun(work, trace, spec, suite_id, replay, stack)
        try:
            async with asyncio.timeout(timeout):
                report = await one.evaluate(
                    task,
                    name=suite_name,
                    progress=False,
                    max_concurrency=1,
                    retry_task=spec.retry_task,
                    retry_evaluators=spec.retry_evaluators,
                    metadata=dict(spec.metadata) if spec.metadata is not None else None,
                    lifecycle=run.hooks,
                )
        except TimeoutError:
            result = _error_result(
                work, suite_id, f'TimeoutError: timed out after {timeout:g} s', '', trace.trace_id, trace.span_id
            )
        else:
            if run.replay_error is not None:
                e = run.replay_error
                result = _error_result(work, suite_id, f'{type(e).__name__}: {e}', '', trace.trace_id, trace.span_id)
            else:
                outcome = (report.cases or report.failures)[0]
                judged = run.judged or _judged(outcome, spec.min_scores, run.replay_stats)
                status, failures, assertions, scores, labels, ev_failures, error = judged
                result = CaseResult(
                    suite=suite_id,
                    case=work.case_name,
                    nodeid=work.nodeid,
                    status=status,
                    repeat=work.repeat,
                    repeats=work.repeats,
                    assertions=assertions,
                    scores=scores,
                    labels=labels,
                    evaluator_failures=ev_failures,
                    failures=failures,
                    error=error,
                    task_duration_s=getattr(outcome, 'task_duration', None),
                    trace_id=trace.trace_id,
                    span_id=trace.span_id,
                    inputs=jsonable(case.inputs),
                    expected_output=jsonable(case.expected_output),
                    output=jsonable(getattr(outcome, 'output', None)),
                    metadata=jsonable(case.metadata),
                    inputs_hash=inputs_hash(case.inputs, case.expected_output),
                )
        if run.replay_stats is not None:
            result.replayed = run.replay_stats.is_replayed
    result.duration_s = time.perf_counter() - t0
    result.task_usage = trace.usage.task
    result.judge_usage = trace.usage.judge
    result.replayed_cost_usd = trace.usage.replayed_cost_usd
    return result


async def run_cases(
    works: Sequence[CaseWork],
    fn: Callable[..., Any],
    fixtures: Mapping[str, Any],
    dataset: Dataset[Any, Any, Any],
    spec: SuiteSpec,
    suite_id: str,
    suite_name: str,
    *,
    max_concurrency: int,
    timeout: float | None,
    setup: TraceSetup | None,
    replay: ReplayConfig | None = None,
    scrubber: SecretScrubber | None = None,
    on_result: Callable[[CaseResult], None],
) -> list[CaseResult]:
    """Run cases concurrently, at most `max_concurrency` at once; a fault in one case never loses another's result.

    Each result is scrubbed of secrets (`scrub_case_result`) before `on_result` journals, reports or shows it.
    """
    task = make_task(fn, fixtures)
    limiter = asyncio.Semaphore(max_concurrency)
    scrubber = scrubber or SecretScrubber()

    async def guarded(work: CaseWork) -> CaseResult:
        async with limiter:
            try:
                result = await _run_one(work, task, dataset, spec, suite_id, suite_name, timeout, setup, replay)
            except Exception as e:  # a harness fault is this case's error, never the run's
                result = _error_result(
                    work,
                    suite_id,
                    f'evaltrace internal error: {type(e).__name__}: {e}',
                    traceback.format_exc(),
                    None,
                    None,
                )
            try:
                scrub_case_result(result, scrubber)
                on_result(result)
            except Exception as e:  # a fault while recording a result is still only this case's error
                result = _error_result(
                    work,
                    suite_id,
                    f'evaltrace internal error: {type(e).__name__}: {e}',
                    traceback.format_exc(),
                    result.trace_id,
                    result.span_id,
                )
                with contextlib.suppress(Exception):  # never let one case's bookkeeping stop the others
                    on_result(scrub_case_result(result, scrubber))
            return result

    return list(await asyncio.gather(*(guarded(w) for w in works)))
