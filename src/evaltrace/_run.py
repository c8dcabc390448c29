"""Running a suite's selected cases concurrently, each in its own trace, through `Dataset.evaluate`.

Each case is evaluated as a one-case `Dataset.evaluate(...)` call under the case's own root span: pydantic-evals
still runs the task, the evaluators, retries and lifecycle hooks, and still emits its experiment span, but no two
cases share a trace.
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

from ._faults import run_in_thread
from ._judge import inputs_hash, jsonable, judge
from ._replay import ReplayError, ReplayStats, cassette_path, use_cassette
from ._results import CaseResult
from ._settings import RecordMode
from ._suite import SuiteSpec
from ._trace import TraceSetup, case_span

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
    replay_stats: ReplayStats | None = None
    with case_span(f'{suite_name}[{work.case_name}]', attributes, setup) as (trace, span), ExitStack() as stack:
        try:
            if replay is not None:
                replay_stats = stack.enter_context(
                    use_cassette(
                        replay.cassette(suite_id, work),
                        mode=replay.mode,
                        case=work.nodeid,
                        scrub_patterns=replay.scrub_patterns,
                    )
                )
            async with asyncio.timeout(timeout):
                report = await one.evaluate(
                    task,
                    name=suite_name,
                    progress=False,
                    max_concurrency=1,
                    retry_task=spec.retry_task,
                    retry_evaluators=spec.retry_evaluators,
                    metadata=dict(spec.metadata) if spec.metadata is not None else None,
                    lifecycle=spec.lifecycle,
                )
        except TimeoutError:
            result = _error_result(
                work, suite_id, f'TimeoutError: timed out after {timeout:g} s', '', trace.trace_id, trace.span_id
            )
            span.set_attribute('evaltrace.status', 'error')
        except ReplayError as e:  # a corrupt cassette: this case's one-line error, not an internal error
            result = _error_result(work, suite_id, f'{type(e).__name__}: {e}', '', trace.trace_id, trace.span_id)
            span.set_attribute('evaltrace.status', 'error')
        else:
            outcome = (report.cases or report.failures)[0]
            status, failures, assertions, scores, labels, ev_failures, error = judge(outcome, spec.min_scores)
            output = getattr(outcome, 'output', None)
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
                output=jsonable(output),
                metadata=jsonable(case.metadata),
                inputs_hash=inputs_hash(case.inputs, case.expected_output),
            )
            if replay_stats is not None and replay_stats.error is not None:
                # A cassette miss surfaces inside the task as an exception; name the miss itself.
                result.status = 'error'
                result.failures.insert(0, str(replay_stats.error))
                result.error = {'type': 'CassetteMiss', 'message': str(replay_stats.error), 'traceback': ''}
            span.set_attribute('evaltrace.status', result.status)
        if replay_stats is not None:
            result.replayed = replay_stats.is_replayed
            span.set_attribute('evaltrace.replayed', replay_stats.is_replayed)
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
    on_result: Callable[[CaseResult], None],
) -> list[CaseResult]:
    """Run cases concurrently, at most `max_concurrency` at once; a fault in one case never loses another's result."""
    task = make_task(fn, fixtures)
    limiter = asyncio.Semaphore(max_concurrency)

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
                    on_result(result)
            return result

    return list(await asyncio.gather(*(guarded(w) for w in works)))
