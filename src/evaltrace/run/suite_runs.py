"""Suite runs: which items run together, with which fixture values, and how long those values must live.

A suite run is one suite function with one combination of its other parameters (`parametrize` marks, parametrized
fixtures, class or module parameters). Its cases share one set of fixture values and one context, and are reported,
gated and baselined under the suite run's id (see `collect.items.suite_run_id`).

When a suite run starts (see the README, "When a suite run starts"):

* Ahead of its first item, when pytest reaches the first eval item of the session, if every fixture it needs is a
  `parametrize` value or an unparametrized session-scoped fixture (autouse ones included): those exist for the
  whole session, so nothing is lost by resolving them early. It runs in the context the session had before its
  first eval item was set up.
* Otherwise when pytest sets up its first item, with that item's fixture values and context (so an
  `Agent.override` in a yield fixture applies to that suite run's cases, and to no other). Function-scoped values
  belong to that item: its fixture teardown is held back until the suite run's last case has finished, then runs in
  the teardown of the suite run's last item (which reports what it raises).
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.python import get_direct_param_fixture_func

from ..collect.items import CaseParam, SuiteRuntime, case_param, suite_run_id
from ..report.parts import SuiteInfo
from ..schedule.scheduler import CaseJob, Lane
from .experiment import Experiment

__all__ = (
    'SuiteRun',
    'early_fixtures',
    'fixture_params',
    'hold_teardown',
    'plan_suite_runs',
    'release_teardown',
    'run_held_finalizers',
)


@dataclass(eq=False)
class SuiteRun:
    """One suite run: its items in pytest's order, its lane in the scheduler, and its cases' jobs once started."""

    run_id: str
    runtime: SuiteRuntime
    lane: Lane
    items: list[tuple[pytest.Function, CaseParam]] = field(default_factory=list[tuple[pytest.Function, CaseParam]])
    jobs: dict[str, CaseJob] = field(default_factory=dict[str, CaseJob])
    holder: pytest.Item | None = None
    """The item whose fixture values the cases use, when the suite run started at that item."""
    held: list[Callable[[], object]] = field(default_factory=list[Callable[[], object]])
    """The holder's teardown, held back until every case of the suite run has finished."""
    info: SuiteInfo | None = None
    experiment: Experiment | None = None
    ended: int = 0
    """Cases of the suite run that have ended and been recorded (counted on the scheduler's loop)."""
    settled: int = 0
    """Jobs whose future is done: ended, failed or cancelled (counted where the future settles, on the loop)."""
    done: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future[None])
    """Set when the suite run has finished: every case ended, its experiment's report built."""

    def suite_info(self) -> SuiteInfo:
        if self.info is None:
            spec = self.runtime.spec
            self.info = SuiteInfo(
                suite=self.run_id,
                name=self.runtime.name,
                dataset=self.runtime.dataset.name,
                dataset_path=self.runtime.dataset_path,
                gate=spec.gate,
                pass_k=spec.pass_k,
                repeat=spec.repeat,
            )
        return self.info

    @property
    def experiment_name(self) -> str:
        """The suite's name with the suite run's parameters, e.g. `test_words[True]`."""
        return self.runtime.name + self.run_id[len(self.runtime.suite_id) :]

    def finished(self) -> bool:
        """Every case of the suite run was started and has ended (O(1): it is asked at every item's teardown)."""
        return len(self.jobs) == len(self.items) and self.settled >= len(self.items)

    def settle(self, _future: concurrent.futures.Future[Any]) -> None:
        self.settled += 1

    @functools.cached_property
    def repeats_of(self) -> dict[str, list[str]]:
        """The node ids of each case's runs (its repeats), by case name; made once, when first asked for (after
        planning: a suite run's items do not change once it runs)."""
        out: dict[str, list[str]] = {}
        for item, param in self.items:
            out.setdefault(param.case_name, []).append(item.nodeid)
        return out

    def outcomes(self) -> Iterable[tuple[str, str]]:
        """(node id, 'cancelled' | 'not started') for each case that did not finish."""
        for item, _ in self.items:
            job = self.jobs.get(item.nodeid)
            if job is None or job.future.cancelled():
                yield item.nodeid, 'not started'
            elif not job.future.done() or job.future.exception() is not None:
                yield item.nodeid, 'cancelled'


def _may_batch(item: pytest.Item) -> bool:
    # A skip mark, or a skipif that may hold: the item may never run, so its case is not started ahead of it.
    return item.get_closest_marker('skip') is None and item.get_closest_marker('skipif') is None


def plan_suite_runs(items: Sequence[pytest.Item], lane_cap: Callable[[SuiteRuntime], int]) -> dict[str, SuiteRun]:
    """Group the selected case items into suite runs, in pytest's order."""
    runs: dict[str, SuiteRun] = {}
    for item in items:
        param = case_param(item)
        if not isinstance(param, CaseParam) or not isinstance(item, pytest.Function) or not _may_batch(item):
            continue
        run_id = suite_run_id(item, param)
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = SuiteRun(run_id, param.suite, Lane(lane_cap(param.suite)))
        run.items.append((item, param))
    return runs


def fixture_params(runtime: SuiteRuntime) -> tuple[str, ...]:
    """The fixtures the suite function takes (every parameter after the case inputs, and after `self`)."""
    return tuple(inspect.signature(runtime.fn).parameters)[2 if runtime.method else 1 :]


def early_fixtures(run: SuiteRun, current: pytest.Item) -> dict[str, Any] | None:
    """The fixture values of a suite run resolved ahead of its first item, or None when it must wait for it.

    `current` is the item being run: its request resolves the session-scoped fixtures (the session is set up).
    """
    item, param = run.items[0]
    info: Any = getattr(item, '_fixtureinfo', None)
    manager: Any = getattr(current.session, '_fixturemanager', None)
    current_request: Any = getattr(current, '_request', None)
    if info is None or manager is None or current_request is None:
        return None
    direct: dict[str, Any] = {}
    session_scoped: list[str] = []
    for name in item.fixturenames:
        if name in (param.suite.inputs_param, 'request'):
            continue
        defs = info.name2fixturedefs.get(name)
        if not defs:
            return None
        fixturedef = defs[-1]
        if fixturedef.func is get_direct_param_fixture_func:
            direct[name] = item.callspec.params[name]
            continue
        if fixturedef.scope != 'session' or fixturedef.params is not None:
            return None
        visible = manager.getfixturedefs(name, current)
        if not visible or visible[-1] is not fixturedef:  # another definition of the name where `current` stands
            return None
        session_scoped.append(name)
    values = dict(direct)
    for name in session_scoped:
        try:
            values[name] = current_request.getfixturevalue(name)
        except Exception:  # its own item reports the error, with pytest's message, when it sets it up
            return None
    return {name: values[name] for name in fixture_params(param.suite)}


def _setup_stack(item: pytest.Item) -> dict[pytest.Item, tuple[list[Callable[[], object]], Any]]:
    """pytest's stack of set-up nodes, each with its finalizers (and the exception its setup raised, if any)."""
    return getattr(item.session, '_setupstate').stack  # noqa: B009  (pytest keeps no public handle on it)


def hold_teardown(item: pytest.Item) -> list[Callable[[], object]]:
    """Take the item's finalizers (its function-scoped fixtures' teardown) from pytest, to run them later."""
    stack = _setup_stack(item)
    entry = stack.get(item)
    if entry is None:
        return []
    finalizers: list[Callable[[], object]] = entry[0]
    held = list(finalizers)
    finalizers.clear()
    return held


def release_teardown(item: pytest.Item, held: list[Callable[[], object]]) -> None:
    """Give held finalizers back to pytest as the item's own, so that its teardown runs them (and reports what they
    raise on this item, then tears the rest of its stack down as usual).

    They go first in the item's list: pytest runs the last registered first, so the item's own finalizers (of values
    it made after the held ones) run before them.
    """
    stack = _setup_stack(item)
    if item not in stack:  # a setup hook raised before pytest set it up (`xfail(run=False)`): its teardown pops it
        stack[item] = ([], None)
    finalizers: list[Callable[[], object]] = stack[item][0]
    finalizers[:0] = held
    held.clear()


def run_held_finalizers(held: list[Callable[[], object]]) -> None:
    """Run held finalizers as pytest would have (last registered first); raise what they raised."""
    errors: list[BaseException] = []
    while held:
        fin = held.pop()
        try:
            fin()
        except Exception as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup('errors while tearing down the fixtures of a suite run', errors)
