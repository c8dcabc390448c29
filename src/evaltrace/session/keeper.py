"""The report a session keeps while its cases finish: each case journaled at once, the JSON report rewritten now
and then (`complete: false`), and written in full at the end (see `end`).

Every process that runs cases journals them (see `report.journal`); only the controller (or a run without xdist)
adds them to its report, from the test reports its workers send (`on_report`). The report itself is built in one
pass from the typed results (`report.final.build`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ..collect.shard import ShardPlan
from ..report.final import BaselineInput, Report, build
from ..report.journal import CaseJournal
from ..report.parts import ReportState, SuiteInfo, write_json_atomic
from ..results.case import CaseResult
from ..settings.values import Settings

if TYPE_CHECKING:
    from ..views.progress_view import ProgressView

__all__ = (
    'CASE_REPORT_ATTR',
    'PROGRESS_REPORT_ATTR',
    'SUITE_REPORT_ATTR',
    'ReportKeeper',
    'now',
)

CASE_REPORT_ATTR = 'evaltrace_case'
SUITE_REPORT_ATTR = 'evaltrace_suite'
PROGRESS_REPORT_ATTR = 'evaltrace_progress'
"""On a worker's report: the size of the case's suite run on that worker, for the controller's progress lines."""

WRITE_INTERVAL_S = 2.0
"""The report is rewritten at most this often while cases finish (the journal holds every case at once)."""
WRITE_BUDGET = 0.02
"""...and at most this fraction of the run's time goes to rewriting it, which matters for thousands of cases."""


def now() -> str:
    """The time now, as the report writes it (UTC, ISO 8601, in milliseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')


@dataclass
class ReportKeeper:
    """The results of one session and its report, kept current while cases finish (the base of `EvalSession`)."""

    settings: Settings
    is_worker: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=now)
    state: ReportState = field(default_factory=ReportState)
    suites: dict[str, SuiteInfo] = field(default_factory=dict[str, SuiteInfo])
    expected: list[str] = field(default_factory=list[str])
    gated_failures: set[str] = field(default_factory=set[str])
    harness_errors: list[str] = field(default_factory=list[str])
    _last_write: float = 0.0
    _write_cost: float = 0.0
    report_written: bool = False
    report_failed: bool = False
    """A write of the report failed (the summary then names no report file)."""
    journal: CaseJournal | None = None
    interrupted: str | None = None
    """The signal that interrupted the run (SIGINT, SIGTERM), when one did."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: ProgressView | None = None
    """The progress lines of the running suite runs (none on a worker, or when the setting is off)."""
    whole_selection: bool = True
    """False once the run is known to select some cases only (see `plugin`): the baseline's others are not removed."""

    def not_finished(self) -> dict[str, list[str]]:
        """The selected cases that will not finish, by why (`cancelled`, `not started`), once no case runs any more;
        empty until then. The session knows them (`EvalSession.not_finished`)."""
        return {}

    def case_finished(self, result: CaseResult, info: SuiteInfo) -> None:
        """A case finished in this process: journal it at once (see report.journal), and keep the report near current.

        Called on the scheduler's thread as each case ends; the lock keeps the report whole while it is written.
        """
        with self.lock:
            self._case_finished(result, info)
        if self.progress is not None:
            self.progress.finished(info.suite, result.status, result.usage.cost_usd)

    def _case_finished(self, result: CaseResult, info: SuiteInfo) -> None:
        if self.journal is None:
            self.journal = CaseJournal(self.settings.report, self.run_id)
        try:
            self.journal.append(result.to_dict(), info.to_dict())
        except OSError as e:
            self.harness_errors.append(f'could not write the journal {self.journal.path}: {e}')
        if not self.is_worker:
            self.add_result(result, info)
            interval = max(WRITE_INTERVAL_S, self._write_cost / WRITE_BUDGET)
            if time.monotonic() - self._last_write >= interval:
                self._write_report(complete=False)

    # ---- reporting (controller, or a run without xdist) ----

    def on_report(self, report: pytest.TestReport) -> None:
        case = getattr(report, CASE_REPORT_ATTR, None)
        suite = getattr(report, SUITE_REPORT_ATTR, None)
        if case is None or suite is None:
            return
        result, info = CaseResult.from_dict(case), SuiteInfo.from_dict(suite)
        self.add_result(result, info)
        if self.progress is not None:
            meta = getattr(report, PROGRESS_REPORT_ATTR, None)
            self.progress.reported(info.suite, result.status, result.usage.cost_usd, meta)
        self._maybe_write()

    def _maybe_write(self) -> None:
        interval = max(WRITE_INTERVAL_S, self._write_cost / WRITE_BUDGET)
        if time.monotonic() - self._last_write >= interval:
            self.write_report(complete=False)

    def add_result(self, result: CaseResult, info: SuiteInfo) -> None:
        if info.experiment is not None or info.suite not in self.suites:  # the experiment is known at the end
            self.suites[info.suite] = info
        self.state.add(result)
        if (info.gate is not None and not info.gate.is_empty()) or self.settings.gate is not None:
            self.gated_failures.add(result.nodeid)

    def report_data(
        self, complete: bool, *, plan: ShardPlan | None = None, baseline: BaselineInput | None = None
    ) -> Report:
        """The report of the cases so far, built in one pass (see `report.final.build`); at the session's end, with the
        shard plan and the comparison with the baseline."""
        extra: dict[str, Any] = {'interrupted': self.interrupted} if self.interrupted else {}
        not_run = self.not_finished()  # the final report names what did not finish, neither passed nor failed
        if not_run.get('cancelled'):
            extra['cancelled'] = not_run['cancelled']
        if not_run.get('not started'):
            extra['not_started'] = not_run['not started']
        if self.settings.rescore:
            from ..run.rescore import rescore_report_fields  # only a re-scoring run pays for importing it

            # One shard's run, re-scored as that shard (not as one of its own): the plan's other cases were left out.
            split = plan is not None and plan.count > 1 and self.settings.shard[1] == 1
            left_out = plan.total_cases - len(self.expected) if plan is not None and split else None
            extra.update(rescore_report_fields(self.settings.rescore, left_out))
        index, count = self.settings.shard
        return build(
            run_id=self.run_id,
            started_at=self.started_at,
            finished_at=now() if complete else None,
            complete=complete,
            suites=list(self.suites.values()),
            cases=self.state.ordered(),
            session_gate=self.settings.gate,
            expected=self.expected,
            shard={'index': index, 'count': count, **(plan.to_dict() if plan is not None else {})},
            case_filter=self.settings.filter.text if self.settings.filter is not None else None,
            extra=extra,
            baseline=baseline,
            whole_selection=self.whole_selection,
        )

    def write_report(self, complete: bool) -> Report:
        """Write the report of the cases so far (`complete: false` while the run goes on)."""
        with self.lock:
            return self._write_report(complete)

    def write_final(self, data: dict[str, Any]) -> bool:
        """Write the final report's JSON; False (and said once) when it could not be written."""
        try:
            write_json_atomic(self.settings.report, data)
        except OSError as e:
            self.report_error(e)
            return False
        self.report_written = True
        return True

    def report_error(self, error: OSError) -> None:
        """The report could not be written: said once, however often the run tries again."""
        message = f'could not write the report {self.settings.report}: {error}'
        if message not in self.harness_errors:
            self.harness_errors.append(message)
        self.report_failed = True

    def _write_report(self, complete: bool) -> Report:
        t0 = time.monotonic()
        report = self.report_data(complete)
        try:
            write_json_atomic(self.settings.report, report.to_json())
        except OSError as e:
            self.report_error(e)
            return report
        finally:
            self._last_write = time.monotonic()
            self._write_cost = self._last_write - t0
        self.report_written = True
        return report
