"""Gated failures as their own outcome in pytest's report: letter `g`, word `GATED`, yellow, counted apart.

A case that fails under a gate (or a failing repeat of a case that passes by the k-of-n rule) does not fail the run
by itself (see `report.decide`). Reported as pytest's `failed`, it made a green run's last line say "12 failed", put 12
`<failure>` elements in the JUnit XML of a green job, and showed a case that passed by k-of-n as `FAILED`.

So its call report is made a non-failing outcome that pytest and JUnit consumers understand, and that stays
distinguishable:

- the terminal: `pytest_report_teststatus` gives it the category `gated` (`g`, `GATED`, yellow), so the last line
  says `3 passed, 2 gated`; evaltrace's summary still lists it with its trace link;
- JUnit: pytest writes a non-failing, non-passing report as `<skipped>`: the element says
  `evaltrace: gated failure: <why>` and carries the full failure message, and the case gets the property
  `evaltrace.outcome = gated`; JUnit consumers count no failure;
- `--lf` still re-runs it (it is recorded as failed in pytest's cache), and `-x` does not stop on it.

A failed gate is the reverse case: nothing in pytest failed, yet the run fails (exit status 6). So each failed gate
is reported, at the end of the session, as a failed test of its own (`report_gate_failures`): node id
`<suite run>::gate[<gate>]` (`evaltrace::gate[<gate>]` for the session gate), the gate's one-line reason as its
message. pytest's last line counts it (`3 passed, 1 gated, 1 failed`), its short summary lists it, and JUnit holds
a `<testcase>` with a `<failure>` and the property `evaltrace.outcome = gate failed`. It shows no progress letter
(it is no item that ran), and `--lf` does not record it.

This module is a pytest plugin object of its own, registered by `plugin.pytest_configure`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from ..names import OUTCOME_PROPERTY
from ..results.case import CaseResult
from ..settings.values import settings_of

if TYPE_CHECKING:
    from ..judge.gates import Gate
    from ..report.decide import GateFailure

__all__ = (
    'GATED',
    'GATED_ATTR',
    'GATE_FAILED',
    'GATE_REPORT_ATTR',
    'GatedOutcome',
    'is_gated_failure',
    'report_gate_failures',
)

GATED = 'gated'
"""The category, in pytest's terminal stats, of a failure that does not fail the run."""
GATED_ATTR = 'evaltrace_gated'
"""Set on a gated call report (shipped by xdist with the report's other attributes)."""
GATE_FAILED = 'gate failed'
"""The `evaltrace.outcome` property of a failed gate's report."""
GATE_REPORT_ATTR = 'evaltrace_gate'
"""Set on a failed gate's reports: `logging` while they go to `pytest_runtest_logreport`, then `logged`."""


def report_gate_failures(config: pytest.Config, failures: Iterable[GateFailure]) -> None:
    """Report each failed gate as a failed test of its own (a call report and a passing teardown, as pytest
    reports an item), to every `pytest_runtest_logreport`: the terminal's counts, JUnit, the cache. Called by the
    process that decides the verdict (never an xdist worker), before JUnit writes its file."""
    for failure in failures:
        path, _, rest = failure.nodeid.partition('::')
        location = (path, None, rest.replace('::', '.'))
        properties: list[tuple[str, object]] = [(OUTCOME_PROPERTY, GATE_FAILED)]
        call = pytest.TestReport(failure.nodeid, location, {}, 'failed', failure.reason, 'call')
        teardown = pytest.TestReport(failure.nodeid, location, {}, 'passed', None, 'teardown')
        for report in (call, teardown):
            report.user_properties = list(properties)  # JUnit writes the teardown report's
            setattr(report, GATE_REPORT_ATTR, 'logging')
            config.hook.pytest_runtest_logreport(report=report)
            setattr(report, GATE_REPORT_ATTR, 'logged')


def is_gated_failure(
    result: CaseResult, suite_gate: Gate | None, session_gate: Gate | None, siblings: Iterable[CaseResult], pass_k: int
) -> bool:
    """Whether a failing case does not fail the run by itself (pure): it is under a gate that checks something, or
    it is a failing repeat of a case that passes by the k-of-n rule (judged on the repeats known so far)."""
    from ..report.decide import SETUP_ERROR

    if result.status not in ('failed', 'error') or (result.error or {}).get('type') == SETUP_ERROR:
        return False
    if any(gate is not None and not gate.is_empty() for gate in (suite_gate, session_gate)):
        return True
    if result.repeats > 1:
        runs = [r for r in siblings if r.case_key == result.case_key]
        return sum(r.status == 'passed' for r in runs) >= pass_k
    return False


class GatedOutcome:
    """The hooks that report gated failures as such (see the module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == 'call' and report.failed:
            # Never let the outcome's presentation hide the failure itself: on any trouble it stays `failed`.
            with contextlib.suppress(Exception):
                self._mark(item, report)
        return report

    def _mark(self, item: pytest.Item, report: pytest.TestReport) -> None:
        from ..collect.items import CaseParam, case_param

        param = case_param(item)
        if not isinstance(param, CaseParam):
            return
        runtime = param.suite
        result = runtime.results.get(item.nodeid)
        if result is None:
            return
        session_gate = settings_of(item.config).gate
        pass_k = runtime.spec.pass_k or runtime.spec.repeat
        if not is_gated_failure(result, runtime.spec.gate, session_gate, runtime.results.values(), pass_k):
            return
        message = report.longreprtext
        why = message.splitlines()[0] if message else result.status
        path, lineno, _ = item.location
        report.outcome = 'skipped'
        # A skipped report's longrepr is (path, line, reason): JUnit writes it as <skipped message=...>details.
        report.longrepr = (str(path), (lineno or 0) + 1, f'evaltrace: gated failure: {why}\n{message}')
        setattr(report, GATED_ATTR, True)
        report.user_properties.append((OUTCOME_PROPERTY, GATED))
        item.user_properties.append((OUTCOME_PROPERTY, GATED))  # JUnit writes the teardown report's copy

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        if getattr(report, GATED_ATTR, False) and report.when == 'call':
            return GATED, 'g', ('GATED', {'yellow': True})
        gate = getattr(report, GATE_REPORT_ATTR, None)
        if gate is not None and report.when == 'call':
            # Counted as failed; no progress letter or line while it is logged (no item ran, the progress line is
            # done), but `FAILED` in the short summary.
            return ('failed', '', '') if gate == 'logging' else ('failed', 'F', ('FAILED', {'red': True}))
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # pytest's cache forgets a skipped test; `--lf` must still re-run a case that failed. A gate is no test to
        # re-run: its cases are (the failing ones are recorded).
        gated, gate = getattr(report, GATED_ATTR, False), getattr(report, GATE_REPORT_ATTR, False)
        if gated or gate:
            lf: Any = self.config.pluginmanager.get_plugin('lfplugin')
            if lf is not None and isinstance(getattr(lf, 'lastfailed', None), dict):
                lastfailed: dict[object, bool] = lf.lastfailed
                # pytest 9 keys its cache by the report's structured id (`report.id`), earlier ones by the string.
                key: object = getattr(report, 'id', report.nodeid)
                if gated:
                    lastfailed[key] = True
                else:
                    lastfailed.pop(key, None)
