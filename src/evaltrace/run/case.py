"""Running one case: in its own trace, through the pydantic-evals function `Dataset.evaluate` runs each case with.

Each case runs `_run_task_and_evaluators` (see _upstream) in an empty context: pydantic-evals runs the task, the
evaluators, retries and lifecycle hooks, and its `case: …` span is the root of the case's own trace (see _trace),
so no two cases share a trace. evaltrace's own part of a case (its cassette, its verdict on the root span) runs as
the case's lifecycle, around the suite's own lifecycle hooks. The suite run's experiment (see _experiment) gets a
span for the case, linked to that trace. The scheduler (see _schedule) decides when a case runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import inspect
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator, EvaluatorContext
from pydantic_evals.lifecycle import CaseLifecycle
from pydantic_evals.reporting import ReportCase, ReportCaseFailure

from ..collect.suite import SuiteSpec
from ..judge.case import CaseJson, Judged, json_type_lost, jsonable, judge
from ..names import (
    INPUTS_DIGEST_ATTRIBUTE,
    OUTPUT_TYPE_ATTRIBUTE,
    REPLAYED_ATTRIBUTE,
    SHARD_ATTRIBUTE,
    STATUS_ATTRIBUTE,
)
from ..results.case import CaseResult, CaseStatus
from ..safety.scrub import SecretScrubber, scrub_case_result
from ..schedule.scheduler import BLOCK_THRESHOLD_S, CaseClock, case_timeout
from ..trace.tracing import CaseTrace, TraceSetup, case_trace
from .experiment import Experiment
from .faults import run_in_thread
from .replay import ReplayConfig, ReplayError, ReplayStats, use_cassette
from .upstream import run_task_and_evaluators

__all__ = ('CaseWork', 'SuiteRunContext', 'make_task', 'off_loop', 'run_case')


@dataclass(frozen=True)
class CaseWork:
    """One case to run: the dataset case, which repeat it is, and the pytest node it reports to."""

    case: Case[Any, Any, Any]
    case_name: str
    nodeid: str
    repeat: int | None
    repeats: int


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


_SYNC_EVALUATORS: dict[type[Any], bool] = {}


def _runs_on_loop(evaluator: Evaluator[Any, Any, Any]) -> bool:
    cls = type(evaluator)
    on_loop = _SYNC_EVALUATORS.get(cls)
    if on_loop is None:
        on_loop = (
            # pydantic-evals' own evaluators are quick; a user's sync one may block (a model call, a database).
            cls.__module__.startswith('pydantic_evals.')
            or inspect.iscoroutinefunction(cls.evaluate)
            or cls.evaluate_async is not Evaluator.evaluate_async
        )
        _SYNC_EVALUATORS[cls] = on_loop
    return on_loop


def off_loop(evaluators: Sequence[Evaluator[Any, Any, Any]]) -> list[Evaluator[Any, Any, Any]]:
    """The evaluators, with each sync one of the user's made to run in a thread, off the event loop.

    A copy of the evaluator gets an `evaluate_async` of its own: everything else pydantic-evals reads of it (its
    name, its spec, its version) is unchanged.
    """
    out: list[Evaluator[Any, Any, Any]] = []
    for evaluator in evaluators:
        if not _runs_on_loop(evaluator):
            threaded = copy.copy(evaluator)

            async def evaluate_async(ctx: EvaluatorContext[Any, Any, Any], _ev: Any = threaded) -> Any:
                return await run_in_thread(_ev.evaluate, ctx)

            object.__setattr__(threaded, 'evaluate_async', evaluate_async)
            evaluator = threaded
        out.append(evaluator)
    return out


def _bare_result(
    work: CaseWork,
    suite_id: str,
    values: CaseJson,
    status: CaseStatus,
    failure: str,
    trace_id: str | None,
    span_id: str | None,
    *,
    error: dict[str, str] | None = None,
    xfailed: bool = False,
) -> CaseResult:
    """A case's result without an outcome of pydantic-evals' to judge (an error, or an end its task chose): the case,
    its one failure, its trace and its own values."""
    return CaseResult(
        suite=suite_id,
        case=work.case_name,
        nodeid=work.nodeid,
        status=status,
        repeat=work.repeat,
        repeats=work.repeats,
        failures=[failure],
        error=error,
        trace_id=trace_id,
        span_id=span_id,
        inputs=values.inputs,
        expected_output=values.expected_output,
        metadata=values.metadata,
        inputs_hash=values.inputs_hash,
        xfailed=xfailed,
    )


def _error_result(
    work: CaseWork, suite_id: str, values: CaseJson, message: str, tb: str, trace_id: str | None, span_id: str | None
) -> CaseResult:
    error = {'type': message.split(':', 1)[0], 'message': message, 'traceback': tb}
    return _bare_result(work, suite_id, values, 'error', message, trace_id, span_id, error=error)


_PYTEST_OUTCOMES = (pytest.skip.Exception, pytest.xfail.Exception, pytest.fail.Exception)


def _outcome_status(outcome: BaseException | None) -> CaseStatus | None:
    """The status of a case ended by a pytest outcome (see `_outcome_result`), or None for any other exception."""
    if isinstance(outcome, pytest.xfail.Exception):  # first: pytest's XFailed is a kind of Failed
        return 'skipped'
    if isinstance(outcome, pytest.fail.Exception):
        return 'failed'
    if isinstance(outcome, pytest.skip.Exception):
        return 'skipped'
    return None


def _outcome_result(
    work: CaseWork, suite_id: str, values: CaseJson, outcome: BaseException, trace_id: str | None, span_id: str | None
) -> CaseResult:
    """A case whose task ended itself as a test may: `pytest.fail` fails it (with its message); `pytest.skip`,
    `importorskip` and `pytest.xfail` skip it, out of pass rates and gates, and its item reports it so (see
    `session.state`: `xfailed`, and the reason as its one failure)."""
    reason = getattr(outcome, 'msg', None) or str(outcome)
    if _outcome_status(outcome) == 'failed':
        return _bare_result(work, suite_id, values, 'failed', str(outcome), trace_id, span_id)
    xfailed = isinstance(outcome, pytest.xfail.Exception)
    return _bare_result(work, suite_id, values, 'skipped', reason, trace_id, span_id, xfailed=xfailed)


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
        stored_duration: float | None = None,
    ) -> None:
        self.work = work
        self.stored_duration = stored_duration
        self.trace = trace
        self.spec = spec
        self.suite_id = suite_id
        self.replay = replay
        self.stack = stack
        self.replay_stats: ReplayStats | None = None
        self.replay_error: ReplayError | None = None
        self.judged: Judged | None = None
        self.output_json: Any = None
        """The output as JSON (see `jsonable`), made once for the root span's stamp and the case's result."""

    def hooks(self, case: Case[Any, Any, Any]) -> CaseLifecycle[Any, Any, Any]:
        return _CaseHooks(case, self)

    def enter_cassette(self) -> None:
        if self.replay is None:
            return
        try:
            self.replay_stats = self.stack.enter_context(
                use_cassette(
                    self.replay.cassette(self.suite_id, self.work.case_name, self.work.repeat),
                    mode=self.replay.mode,
                    case=self.work.nodeid,
                    scrub_patterns=self.replay.scrub_patterns,
                )
            )
        except ReplayError as e:  # a corrupt cassette: this case's one-line error, not an internal error
            self.replay_error = e
            raise

    def finish(
        self,
        outcome: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any] | None,
        ended_by: BaseException | None = None,
    ) -> None:
        """Close the cassette (saving what was recorded), judge the case, and stamp the verdict on its root.

        `ended_by` is what ended the case when it has no outcome: a timeout's cancellation, or a pytest outcome
        (`pytest.skip`, `xfail`, `fail`), whose status `_run_one` gives the case's result too.
        """
        try:
            self.stack.close()
        finally:
            stamp: dict[str, Any] = {}
            if self.replay_error is not None:  # an unreadable cassette
                stamp[STATUS_ATTRIBUTE] = 'error'
            elif outcome is None:  # a pytest outcome, else cancelled (a timeout) or ended by a BaseException
                stamp[STATUS_ATTRIBUTE] = _outcome_status(ended_by) or 'error'
            else:
                try:
                    self.judged = _judged(outcome, self.spec.min_scores, self.replay_stats)
                    stamp[STATUS_ATTRIBUTE] = self.judged[0]
                    if isinstance(outcome, ReportCase):
                        self.output_json = jsonable(outcome.output)
                        # Re-scoring reads the output back from JSON: it must know when that is not the output.
                        if (lost := json_type_lost(outcome.output, self.output_json)) is not None:
                            stamp[OUTPUT_TYPE_ATTRIBUTE] = lost
                except Exception:  # a harness bug: `_run_one` judges again and reports it as this case's error
                    pass
            if self.replay_stats is not None:
                stamp[REPLAYED_ATTRIBUTE] = self.replay_stats.is_replayed
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
        if self._run.stored_duration is not None:
            # Re-scoring: the stand-in task returned at once; a duration evaluator judges the stored run's time.
            ctx = dataclasses.replace(ctx, duration=self._run.stored_duration)
        return ctx if self._inner is None else await self._inner.prepare_context(ctx)

    async def teardown(self, result: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any] | None) -> None:
        # pydantic-evals turns an Exception into a failure; with no result, a BaseException is ending the case (a
        # timeout's cancellation, a pytest outcome) and teardown runs in the `finally` of its case span, which is
        # about to end: the exception in flight is read now, before the suite's own teardown could replace it.
        ended_by = sys.exception() if result is None else None
        try:
            if self._inner is not None:
                await self._inner.teardown(result)
        finally:
            self._run.finish(result, ended_by)


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


Outcome = ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any]


@dataclass(frozen=True)
class SuiteRunContext:
    """What every case of one suite run shares: its task, dataset, settings and where its results go."""

    task: Callable[[Any], Any]
    dataset: Dataset[Any, Any, Any]
    spec: SuiteSpec
    suite_id: str
    suite_name: str
    timeout: float | None
    setup: TraceSetup | None
    replay: ReplayConfig | None
    scrubber: SecretScrubber
    on_result: Callable[[CaseResult], None]
    experiment: Experiment | None = None
    on_ended: Callable[[], None] | None = None
    """Called on the loop after each case of the suite run has ended and been recorded."""
    stored_duration: float | None = None
    """Re-scoring one case: the task duration the stored run measured, which evaluators see (see `run.rescore`)."""
    shard: tuple[int, int] = (1, 1)
    """The run's shard (`index`, `count`): of several, it is on each case's root (re-scoring reads it back)."""
    evaluators: list[Evaluator[Any, Any, Any]] = field(init=False)
    """The dataset's evaluators, the user's sync ones made to run off the loop (see `off_loop`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, 'evaluators', off_loop(self.dataset.evaluators))


def _report_names(work: CaseWork) -> tuple[str, str | None]:
    """The case's name in pydantic-evals' report, and its source case name when it is one repeat of several."""
    if work.repeat is None:
        return work.case_name, None
    return f'{work.case_name} [{work.repeat}/{work.repeats}]', work.case_name


def _timeout_message(timeout: float | None, clock: CaseClock | None) -> str:
    message = f'TimeoutError: timed out after {timeout or 0:g} s'
    # Named when the case's own blocking took at least half its time: then it is why the case timed out.
    if clock is not None and clock.blocked_s >= max(BLOCK_THRESHOLD_S, (timeout or 0) / 2):
        # Named, so that the fix is clear: the other cases were not charged for this time (see _schedule).
        message += (
            f'; it blocked the event loop for {clock.blocked_s:.1f} s (blocking calls in async code: '
            'use their async form, asyncio.to_thread, or a sync task, which runs off the loop)'
        )
    return message


async def _run_one(work: CaseWork, run: SuiteRunContext) -> tuple[CaseResult, Outcome | None]:
    """Run one case in its own trace through pydantic-evals' `_run_task_and_evaluators`, and judge it."""
    spec = run.spec
    case = work.case
    if case.evaluators:
        case = Case(
            name=case.name,
            inputs=case.inputs,
            metadata=case.metadata,
            expected_output=case.expected_output,
            evaluators=off_loop(case.evaluators),
        )
    report_name, source_name = _report_names(work)
    t0 = time.perf_counter()
    outcome: Outcome | None = None
    values = CaseJson.of(work.case)
    attributes = {
        'suite': run.suite_name,
        'nodeid': work.nodeid,
        'dataset': run.dataset.name,
        INPUTS_DIGEST_ATTRIBUTE: values.inputs_digest,
    }
    if run.shard[1] > 1:
        attributes[SHARD_ATTRIBUTE] = f'{run.shard[0]}/{run.shard[1]}'
    with case_trace(f'{run.suite_name}[{work.case_name}]', attributes, run.setup) as trace, ExitStack() as stack:
        case_run = _CaseRun(work, trace, spec, run.suite_id, run.replay, stack, run.stored_duration)
        clock = None
        try:
            async with case_timeout(run.timeout) as clock:
                outcome = await run_task_and_evaluators(
                    run.task,
                    case,
                    report_name,
                    run.evaluators,
                    spec.retry_task,
                    spec.retry_evaluators,
                    source_case_name=source_name,
                    lifecycle=case_run.hooks,
                )
        except TimeoutError:
            message = _timeout_message(run.timeout, clock)
            result = _error_result(work, run.suite_id, values, message, '', trace.trace_id, trace.span_id)
        except _PYTEST_OUTCOMES as e:  # pytest's own outcomes
            # Caught here, in the case's trace, so that the case keeps its link to it.
            result = _outcome_result(work, run.suite_id, values, e, trace.trace_id, trace.span_id)
        else:
            assert outcome is not None
            if case_run.replay_error is not None:
                e = case_run.replay_error
                message = f'{type(e).__name__}: {e}'
                result = _error_result(work, run.suite_id, values, message, '', trace.trace_id, trace.span_id)
            else:
                result = _result(work, run, values, outcome, case_run, trace)
        if case_run.replay_stats is not None:
            case_run.replay_stats.stamp(result)
    result.duration_s = time.perf_counter() - t0
    result.task_usage = trace.usage.task
    result.judge_usage = trace.usage.judge
    result.replayed_cost_usd = trace.usage.replayed_cost_usd
    return result, outcome


def _result(
    work: CaseWork,
    run: SuiteRunContext,
    values: CaseJson,
    outcome: Outcome,
    case_run: _CaseRun,
    trace: CaseTrace,
) -> CaseResult:
    judged = case_run.judged or _judged(outcome, run.spec.min_scores, case_run.replay_stats)
    status, failures, assertions, scores, labels, ev_failures, error = judged
    done = outcome if isinstance(outcome, ReportCase) else None
    return CaseResult(
        suite=run.suite_id,
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
        task_duration_s=done.task_duration if done is not None else None,
        trace_id=trace.trace_id,
        span_id=trace.span_id,
        inputs=values.inputs,
        expected_output=values.expected_output,
        output=None if done is None else case_run.output_json if case_run.judged is not None else jsonable(done.output),
        metadata=values.metadata,
        metrics=dict(done.metrics) if done is not None else {},
        attributes=jsonable(done.attributes) if done is not None else {},
        inputs_hash=values.inputs_hash,
    )


def _as_outcome(work: CaseWork, result: CaseResult, outcome: Outcome | None) -> Outcome:
    """What the experiment records for a case: pydantic-evals' outcome, or a failure for a case that has none."""
    if outcome is not None and (result.status != 'error' or isinstance(outcome, ReportCaseFailure)):
        return outcome
    report_name, source_name = _report_names(work)
    error = result.error or {}
    return ReportCaseFailure[Any, Any, Any](
        name=report_name,
        inputs=work.case.inputs,
        metadata=work.case.metadata,
        expected_output=work.case.expected_output,
        error_message=error.get('message') or '; '.join(result.failures) or result.status,
        error_stacktrace=error.get('traceback', ''),
        source_case_name=source_name,
        trace_id=result.trace_id,
        span_id=result.span_id,
    )


async def run_case(work: CaseWork, run: SuiteRunContext) -> CaseResult:
    """Run one case; a fault in it (a harness bug, a task that raises `SystemExit`) is only this case's error.

    The result is scrubbed of secrets (`scrub_case_result`) before `on_result` journals, reports or shows it. The
    case's span in the suite run's experiment is opened before it runs and closed after (see _experiment).
    """
    experiment = run.experiment
    handle = experiment.open_case(work.case, *_report_names(work)) if experiment is not None else None
    outcome: Outcome | None = None
    try:
        result, outcome = await _run_one(work, run)
    except asyncio.CancelledError:
        if experiment is not None:
            experiment.abandon_case(handle)
        raise
    except BaseException as e:  # SystemExit, KeyboardInterrupt or GeneratorExit from a task end only its own case
        internal = '' if isinstance(e, SystemExit | KeyboardInterrupt | GeneratorExit) else 'evaltrace internal error: '
        message = f'{internal}{type(e).__name__}: {e}'
        result = _error_result(work, run.suite_id, CaseJson.of(work.case), message, traceback.format_exc(), None, None)
    try:
        scrub_case_result(result, run.scrubber)
        run.on_result(result)
    except Exception as e:  # a fault while recording a result is still only this case's error
        result = _error_result(
            work,
            run.suite_id,
            CaseJson.of(work.case),
            f'evaltrace internal error: {type(e).__name__}: {e}',
            traceback.format_exc(),
            result.trace_id,
            result.span_id,
        )
        with contextlib.suppress(Exception):  # never let one case's bookkeeping stop the others
            run.on_result(scrub_case_result(result, run.scrubber))
    if experiment is not None:
        with contextlib.suppress(Exception):  # the experiment is a view of the cases: it never fails one
            outcome = _as_outcome(work, result, outcome)
            experiment.close_case(handle, work.nodeid, outcome, result.trace_id, result.span_id)
    if run.on_ended is not None:
        run.on_ended()
    return result
