"""Scheduling: one event loop per process runs every selected eval case, whatever suite run it belongs to.

The loop runs in a thread of its own, so that pytest's main thread can go on reporting items while cases run: an
item waits only for its own case (`wait`), and reports as soon as that case has finished. Cases are started in
pytest's order (an item that pytest will reach sooner runs sooner), at most `cap` at once in the process, and at
most each suite run's own cap (its lane) at once within it.

A case that blocks the loop (`time.sleep` in async code, a CPU-bound evaluator) would stop every other case's clock
too, and their timeouts would fire on time they never had. `LoopWatch` finds the case that was running while the
loop was blocked, charges the time to it, and gives it back to every other case's timeout.

The two threads share the interpreter's lock. While both have work (the loop runs cases, pytest reports items), the
lock changes hands at the system calls either makes: 6,500 voluntary context switches in a run of 1,000 trivial cases,
where pytest alone makes 25 (`bench/bench_overhead.py`). So an item whose case is done lets the loop run until it is
idle (`Scheduler.wait`), and the loop watch beats only while cases run: 1,900 switches, and 5 % less time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import itertools
import selectors
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

__all__ = ('BLOCK_THRESHOLD_S', 'CaseClock', 'CaseJob', 'Lane', 'LoopWatch', 'Scheduler', 'case_timeout', 'wait')

BLOCK_THRESHOLD_S = 0.25
"""A loop that does not answer for this long is blocked (by the case that was running then). Well above what a busy
machine's scheduler takes from a thread, so that a case is not blamed for the machine's load."""
_BEAT_INTERVAL_S = 0.05
_WAIT_SLICE_S = 0.2


@dataclass(eq=False)
class CaseClock:
    """What the loop watch knows of one running case: how long it blocked the loop, and its armed timeout."""

    blocked_s: float = 0.0
    timeout: asyncio.Timeout | None = None


_CLOCK: contextvars.ContextVar[CaseClock | None] = contextvars.ContextVar('evaltrace_case_clock', default=None)


class LoopWatch:
    """Measures how long the loop stays blocked, and by which case (see the module docstring).

    A thread posts a heartbeat to the loop and waits for it. When the loop has not run it after `BLOCK_THRESHOLD_S`,
    the thread notes the task the loop is stuck in; tasks are mapped to cases by a task factory that reads the case
    clock from the context each task is created in, so a case's child tasks (evaluators) count as the case. When the
    heartbeat finally runs, it runs before the timers that fell due during the block (thread-safe callbacks are
    queued before due timers), so the other cases' timeouts are pushed back before they can fire.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._tasks: weakref.WeakKeyDictionary[asyncio.Task[Any], CaseClock] = weakref.WeakKeyDictionary()
        self.live: set[CaseClock] = set()
        self._lock = threading.Lock()
        self._suspect: CaseClock | None = None
        self._posted = 0.0
        self._outstanding = False
        """A heartbeat is posted and not yet run: a block since `_posted` is not given back yet."""
        self._stop = threading.Event()
        self._cases_run = threading.Event()
        loop.set_task_factory(self._task_factory)  # pyright: ignore[reportArgumentType]
        self._thread = threading.Thread(target=self._watch, name='evaltrace-loop-watch', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._cases_run.set()  # wakes the watch, which then sees the stop

    def cases_running(self, running: bool) -> None:
        """Beat only while cases run: with none, there is no case to blame for a block, nor a timeout to push back."""
        if running:
            self._cases_run.set()
        else:
            self._cases_run.clear()

    def _task_factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
        clock = context.get(_CLOCK) if context is not None else _CLOCK.get()
        if clock is not None:
            self._tasks[task] = clock
        return task

    def pending_block(self, clock: CaseClock) -> float:
        """The time `clock`'s case has been blocking the loop so far, if it is the blocker now; taken from the watch.

        A blocker that ends without awaiting again runs on before the heartbeat that measures the block: this
        credits it at once (the heartbeat still gives the time back to the other cases).
        """
        with self._lock:
            if self._suspect is not clock:
                return 0.0
            self._suspect = None
            return time.monotonic() - self._posted

    def unreturned_block(self, clock: CaseClock) -> float:
        """The time another case has been blocking the loop (or blocked it) that the heartbeat has not yet given back
        to `clock`'s timeout: 0 when there is none, or when `clock`'s case is the blocker.

        When a block ends, the steps queued before it (a case that yielded with `asyncio.sleep(0)`) run before the
        heartbeat that was queued during it: such a case may end in that gap, past a deadline not yet pushed back.
        """
        with self._lock:
            if not self._outstanding or self._suspect is clock:
                return 0.0
            lag = time.monotonic() - self._posted
        return lag if lag >= BLOCK_THRESHOLD_S else 0.0

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._cases_run.wait()
            if self._stop.is_set():
                return
            answered = threading.Event()
            with self._lock:
                self._posted = time.monotonic()
                self._outstanding = True
            try:
                self._loop.call_soon_threadsafe(self._beat, self._posted, answered)
            except RuntimeError:  # the loop is closed
                return
            if not answered.wait(BLOCK_THRESHOLD_S):
                task = asyncio.current_task(self._loop)
                with self._lock:
                    if not answered.is_set():
                        self._suspect = self._tasks.get(task) if task is not None else None
                while not answered.wait(_BEAT_INTERVAL_S) and not self._stop.is_set():
                    pass
            self._stop.wait(_BEAT_INTERVAL_S)

    def _beat(self, posted: float, answered: threading.Event) -> None:
        with self._lock:
            answered.set()
            self._outstanding = False
            blocker, self._suspect = self._suspect, None
        lag = time.monotonic() - posted
        if lag < BLOCK_THRESHOLD_S:
            return
        if blocker is not None:
            blocker.blocked_s += lag
        for clock in self.live:
            if clock is not blocker and clock.timeout is not None and (when := clock.timeout.when()) is not None:
                clock.timeout.reschedule(when + lag)


@asynccontextmanager
async def case_timeout(seconds: float | None) -> AsyncGenerator[CaseClock | None]:
    """`asyncio.timeout` for the running case, that does not count the time other cases blocked the loop.

    Yields the case's clock (None outside a scheduled case, where this is a plain `asyncio.timeout`).
    """
    clock = _CLOCK.get()
    watch = _WATCH.get()
    async with asyncio.timeout(seconds) as cm:
        if clock is None or watch is None or seconds is None:
            yield clock
            return
        clock.timeout = cm
        watch.live.add(clock)
        try:
            yield clock
        finally:
            watch.live.discard(clock)
            clock.timeout = None
        # A case that blocked the loop past its deadline may have finished without awaiting again, so its timer
        # never had a turn: its deadline (pushed back for the time others blocked it) still decides.
        when = cm.when()
        if when is not None and asyncio.get_running_loop().time() >= when:
            own = watch.pending_block(clock)
            clock.blocked_s += own
            # Past the deadline only because another case blocked the loop, and the heartbeat that pushes the
            # deadline back has not run yet: not a timeout (see `LoopWatch.unreturned_block`).
            if own or asyncio.get_running_loop().time() >= when + watch.unreturned_block(clock):
                raise TimeoutError


_WATCH: contextvars.ContextVar[LoopWatch | None] = contextvars.ContextVar('evaltrace_loop_watch', default=None)


@dataclass(eq=False)
class Lane:
    """The queue of one suite run's cases, with that suite run's cap."""

    cap: int
    pending: deque[CaseJob] = field(default_factory=deque['CaseJob'])
    running: int = 0
    queued: bool = False


@dataclass(eq=False)
class CaseJob:
    """One case to run: where it stands in pytest's order, its lane, what to run, in which context."""

    order: int
    lane: Lane = field(repr=False)
    run: Callable[[], Awaitable[Any]] = field(repr=False)
    context: contextvars.Context = field(repr=False)
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future[Any])
    started: bool = False


class Scheduler:
    """Runs submitted cases on one event loop in a background thread (see the module docstring)."""

    def __init__(self, cap: int, setup: Callable[[], None] | None = None) -> None:
        self.cap = cap
        self._loop, self._selector = _new_loop()
        self._ready: list[tuple[int, int, Lane]] = []
        self._seq = itertools.count()
        self._running = 0
        self._lanes: set[Lane] = set()
        self._jobs: dict[asyncio.Task[Any], CaseJob] = {}
        """The running cases' tasks, each with its job (this also keeps the tasks alive while they run)."""
        self.watch = LoopWatch(self._loop)
        self._base = contextvars.Context()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            _WATCH.set(self.watch)
            if setup is not None:
                setup()  # in this thread's context, which every case's context is run from (see `job_context`)
            self._base = contextvars.copy_context()
            started.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()
                if self._selector is not None:
                    self._selector.idle.set()  # for good: a loop that has stopped never needs the lock again

        self._thread = threading.Thread(target=serve, name='evaltrace-scheduler', daemon=True)
        self._thread.start()
        started.wait()
        self.watch.start()

    def job_context(self, context: contextvars.Context) -> contextvars.Context:
        """A copy of `context` for one case, with the scheduler's own variables and a fresh case clock set."""
        ctx = context.copy()
        variables: list[tuple[contextvars.ContextVar[Any], Any]] = list(self._base.items())
        for var, value in variables:  # a new thread starts with an empty context: only what `serve` set
            ctx.run(var.set, value)
        ctx.run(_CLOCK.set, CaseClock())
        return ctx

    def submit(self, jobs: Sequence[CaseJob]) -> None:
        """Queue cases (thread-safe). Jobs of one lane must be submitted in their order."""
        self._loop.call_soon_threadsafe(self._enqueue, list(jobs))

    def cancel_all(self, timeout: float = 10.0) -> None:
        """Cancel every queued and running case, and wait (bounded) until the running ones have stopped."""
        done = concurrent.futures.Future[None]()

        def cancel() -> None:
            for lane in self._lanes:
                while lane.pending:
                    lane.pending.popleft().future.cancel()
            tasks = list(self._jobs)
            for task in tasks:
                task.cancel()

            async def settle() -> None:
                if tasks:
                    await asyncio.wait(tasks, timeout=timeout)
                done.set_result(None)

            self._loop.create_task(settle())

        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(cancel)
        with suppress(concurrent.futures.TimeoutError):
            done.result(timeout + 1)

    def call(self, make: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> None:
        """Run a coroutine on the loop and wait for it (bounded); what it raises is its caller's to record."""
        if self._loop.is_closed():
            return

        async def run() -> None:
            await make()

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        with suppress(concurrent.futures.TimeoutError):
            future.result(timeout)

    def wait(self, future: concurrent.futures.Future[Any], tick: Callable[[], None] | None = None) -> Any:
        """`wait` for a case's result, then let the loop run until it is idle (a slice at most) before going on.

        pytest's thread would otherwise take the interpreter's lock from the loop at each of its system calls while
        cases run (see the module docstring); the loop's cases are done sooner, and the item's report waits at most
        one slice.
        """
        return wait(future, tick, idle=self._selector.idle if self._selector is not None else None)

    def close(self) -> None:
        self.watch.stop()
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # ---- on the loop ----

    def _enqueue(self, jobs: list[CaseJob]) -> None:
        for job in jobs:
            self._lanes.add(job.lane)
            job.lane.pending.append(job)
            self._offer(job.lane)
        self._dispatch()

    def _offer(self, lane: Lane) -> None:
        if lane.pending and lane.running < lane.cap and not lane.queued:
            lane.queued = True
            heapq.heappush(self._ready, (lane.pending[0].order, next(self._seq), lane))

    def _dispatch(self) -> None:
        while self._running < self.cap and self._ready:
            _, _, lane = heapq.heappop(self._ready)
            lane.queued = False
            if not lane.pending or lane.running >= lane.cap:
                continue
            job = lane.pending.popleft()
            if job.future.set_running_or_notify_cancel():
                job.started = True
                lane.running += 1
                self._running += 1
                if self._running == 1:
                    self.watch.cases_running(True)
                task = self._loop.create_task(self._run(job), context=job.context)
                self._jobs[task] = job
                # A bound method, not a partial holding the job: asyncio and anyio put a task's callbacks in its repr
                # (anyio on every cancel), and the job's repr would spell out the case's whole world.
                task.add_done_callback(self._on_done)
            self._offer(lane)

    async def _run(self, job: CaseJob) -> None:
        try:
            job.future.set_result(await job.run())
        except BaseException as e:  # CancelledError included: the waiting item reports it
            job.future.set_exception(e)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        """A case's task has ended: free its places, start what may start, and resolve its job if `_run` could not.

        A task cancelled (`cancel_all`) before its first step never runs `_run`'s body: its item would wait on the
        job forever (`-x` hung so, now and then). Its places are freed before the job is resolved, so that whoever
        the job wakes sees them free.
        """
        job = self._jobs.pop(task)
        job.lane.running -= 1
        self._running -= 1
        if self._running == 0:
            self.watch.cases_running(False)
        if not job.future.done():
            job.future.set_exception(asyncio.CancelledError())
        self._offer(job.lane)
        self._dispatch()


def _new_loop() -> tuple[asyncio.AbstractEventLoop, _IdleSelector | None]:
    """The scheduler's loop, and its selector that tells when it is idle (None on Windows, whose loop is a proactor)."""
    if sys.platform == 'win32':
        return asyncio.new_event_loop(), None
    selector = _IdleSelector()
    return asyncio.SelectorEventLoop(selector), selector


class _IdleSelector(selectors.DefaultSelector):  # pyright: ignore[reportUntypedBaseClass]
    """The loop's selector, which marks the loop idle while it waits with nothing ready to run."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Event()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:  # a poll between ready callbacks: the loop is busy
            return super().select(timeout)
        self.idle.set()
        try:
            return super().select(timeout)
        finally:
            self.idle.clear()


def wait(
    future: concurrent.futures.Future[Any],
    tick: Callable[[], None] | None = None,
    idle: threading.Event | None = None,
) -> Any:
    """Wait for a case's result in the main thread, in slices, so that Ctrl-C is seen at once.

    `tick` is called between slices, on the main thread (the progress lines move while an item waits). With `idle`,
    once the result is there, wait until `idle` is set, a slice at most.
    """
    while True:
        try:
            future.exception(timeout=_WAIT_SLICE_S)  # waits without raising what the case raised
            break
        except concurrent.futures.TimeoutError:
            if tick is not None:
                tick()
    if idle is not None:
        idle.wait(_WAIT_SLICE_S)
    return future.result()
