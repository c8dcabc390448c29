"""The state of one pytest session with eval suites: settings, tracing, batches of cases, results and the report.

Lives in `config.stash` (see plugin.py). Under pytest-xdist each worker runs batches and ships every case result to
the controller on its test report; only the controller (or a run without xdist) writes the report and the summary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor

from ._collect import CaseParam, SuiteRuntime, case_param
from ._faults import FaultPolicy, provider_faults
from ._journal import CaseJournal
from ._judge import failure_message
from ._links import LinkTarget, project_url_from_credentials
from ._report import ReportState, SuiteInfo, build_report, write_json_atomic
from ._results import CaseResult
from ._run import CaseWork, ReplayConfig, frozen_heap, run_cases
from ._scrub import SecretScrubber
from ._settings import Settings
from ._trace import TraceSetup, setup_tracing

__all__ = ('CASE_REPORT_ATTR', 'EXIT_GATE_FAILED', 'EXIT_HARNESS_ERROR', 'SUITE_REPORT_ATTR', 'EvalSession')

CASE_REPORT_ATTR = 'evaltrace_case'
SUITE_REPORT_ATTR = 'evaltrace_suite'
EXIT_GATE_FAILED = 6
"""Exit status when every failing case is under a gate and a gate failed."""
EXIT_HARNESS_ERROR = 7
"""Exit status when evaltrace itself could not do its job (for example, could not write the report)."""

WRITE_INTERVAL_S = 1.0
"""The report is rewritten at most this often while cases finish (the journal holds every case at once)."""
WRITE_BUDGET = 0.05
"""...and at most this fraction of the run's time goes to rewriting it, which matters for thousands of cases."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')


@dataclass
class EvalSession:
    """Everything evaltrace keeps for one session."""

    settings: Settings
    is_worker: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=_now)
    trace: TraceSetup | None = None
    links: LinkTarget | None = None
    state: ReportState = field(default_factory=ReportState)
    suites: dict[str, SuiteInfo] = field(default_factory=dict[str, SuiteInfo])
    expected: list[str] = field(default_factory=list[str])
    gated_failures: set[str] = field(default_factory=set[str])
    failed_nodeids: set[str] = field(default_factory=set[str])
    harness_errors: list[str] = field(default_factory=list[str])
    harness_warnings: list[str] = field(default_factory=list[str])
    batch_mode: bool = True
    _last_write: float = 0.0
    _write_cost: float = 0.0
    report_written: bool = False
    journal: CaseJournal | None = None
    interrupted: str | None = None
    """The signal that interrupted the run (SIGINT, SIGTERM), when one did."""

    # ---- running (any process that runs items) ----

    def link_target(self) -> LinkTarget:
        if self.links is None:
            s = self.settings
            project_url = s.project_url or project_url_from_credentials(s.rootdir / '.logfire')
            # Without a remote trace UI, links point at the case in the HTML report (file://…/report.html#case-…).
            self.links = LinkTarget(template=s.trace_url_template, project_url=project_url, local_report=s.html)
        return self.links

    def tracing(self) -> TraceSetup:
        if self.trace is None:
            s = self.settings
            extra: list[SpanProcessor] = []
            if s.store is not None:
                from ._spool import spool_span_processor

                extra.append(spool_span_processor(s.store, self.run_id, extra_patterns=s.scrub_patterns))
            self.trace = setup_tracing(
                service_name=s.service_name,
                environment=s.environment,
                instrument_pydantic_ai=s.instrument_pydantic_ai,
                instrument_httpx=s.instrument_httpx,
                extra_processors=extra,
            )
        return self.trace

    def close_tracing(self) -> None:
        """Flush this process's spans to its spool; the store imports the spool when it is next queried."""
        if self.trace is not None:
            self.trace.close()
        if self.is_worker or self.settings.store is None or (self.trace is None and not self.state.cases):
            return
        from ._spool import spooled_runs, write_retention

        store, keep = self.settings.store, self.settings.retention
        try:
            write_retention(store, keep)
            # Merge only when more runs wait than are kept, so an unqueried store stays bounded; else the next
            # query merges (`open_store`), and the run does not pay for DuckDB.
            if keep and len(spooled_runs(store)) > keep:
                from ._store import merge_spool

                merge_spool(store, keep_runs=keep)
        except Exception as e:  # StoreError, OSError: the spans are still in the spool for the next query
            self.harness_warnings.append(f'local trace store not updated: {e}')

    def run_item(self, item: pytest.Function, param: CaseParam) -> None:
        """Run an item's case (with the rest of its batch, the first time) and raise its verdict."""
        runtime = param.suite
        if item.nodeid not in runtime.results:
            self._run_batch(item, param)
        result = runtime.results[item.nodeid]
        item.user_properties.extend(_junit_properties(result))
        if result.status in ('failed', 'error'):
            hint = None if self.link_target().is_remote else f"see its trace: evaltrace show '{result.nodeid}'"
            pytest.fail(failure_message(result, hint), pytrace=False)

    def _batch_for(self, item: pytest.Function, param: CaseParam) -> list[tuple[pytest.Item, CaseParam]]:
        """The selected, not yet started cases of the item's suite that this process will run, item first."""
        batch: list[tuple[pytest.Item, CaseParam]] = [(item, param)]
        if not self.batch_mode:
            return batch
        runtime = param.suite
        for other in item.session.items:
            other_param = case_param(other)
            if (
                other is not item
                and isinstance(other_param, CaseParam)
                and other_param.suite is runtime
                and other.nodeid not in runtime.started
            ):
                batch.append((other, other_param))
        return batch

    def _run_batch(self, item: pytest.Function, param: CaseParam) -> None:
        runtime = param.suite
        batch = self._batch_for(item, param)
        for it, _ in batch:
            runtime.started.add(it.nodeid)
        fixtures = {
            name: value
            for name, value in item.funcargs.items()
            if name != runtime.inputs_param and name in _fixture_params(runtime)
        }
        setup = self.tracing()
        links = self.link_target()
        timeout = runtime.spec.timeout or self.settings.timeout

        def on_result(result: CaseResult) -> None:
            result.trace_url = links.url(result.trace_id, result.span_id, anchor=_anchor(result.nodeid))
            runtime.results[result.nodeid] = result
            self.case_finished(result, suite_info(runtime))

        works = [CaseWork(p.case, p.case_name, it.nodeid, p.repeat, p.repeats) for it, p in batch]
        s = self.settings
        faults = FaultPolicy(s.retry_attempts, s.retry_max_delay, s.rate_limit_rpm, s.rate_limit_tpm)
        # One rate limiter per batch, shared by the suite's concurrent cases; the prior heap frozen (see _run).
        with provider_faults(faults), frozen_heap():
            self._run_works(works, runtime, fixtures, timeout, setup, links_on_result=on_result)

    def _run_works(
        self,
        works: list[CaseWork],
        runtime: SuiteRuntime,
        fixtures: dict[str, Any],
        timeout: float | None,
        setup: TraceSetup,
        links_on_result: Callable[[CaseResult], None],
    ) -> None:
        on_result = links_on_result
        if self.settings.rescore is not None:  # the stored outputs and spans stand in for the task (see _rescore)
            from ._rescore import rescore_works

            rescore_works(self.settings, works, runtime, timeout, setup, on_result)
            return
        asyncio.run(
            run_cases(
                works,
                runtime.fn,
                fixtures,
                runtime.dataset,
                runtime.spec,
                runtime.suite_id,
                runtime.name,
                max_concurrency=runtime.spec.max_concurrency or self.settings.max_concurrency,
                timeout=timeout,
                setup=setup,
                replay=ReplayConfig(self.settings.record, self.settings.cassettes, self.settings.scrub_patterns),
                scrubber=SecretScrubber(self.settings.scrub_patterns),
                on_result=on_result,
            )
        )

    def case_finished(self, result: CaseResult, info: SuiteInfo) -> None:
        """A case finished in this process: journal it at once (see _journal), and keep the report near current."""
        if self.journal is None:
            self.journal = CaseJournal(self.settings.report)
        try:
            self.journal.append(result.to_dict(), info.to_dict())
        except OSError as e:
            self.harness_errors.append(f'could not write the journal {self.journal.path}: {e}')
        if not self.is_worker:
            self.add_result(result, info)
            self._maybe_write()

    # ---- reporting (controller, or a run without xdist) ----

    def on_report(self, report: pytest.TestReport) -> None:
        case = getattr(report, CASE_REPORT_ATTR, None)
        suite = getattr(report, SUITE_REPORT_ATTR, None)
        if case is None or suite is None:
            return
        self.add_result(CaseResult.from_dict(case), SuiteInfo.from_dict(suite))
        self._maybe_write()

    def _maybe_write(self) -> None:
        interval = max(WRITE_INTERVAL_S, self._write_cost / WRITE_BUDGET)
        if time.monotonic() - self._last_write >= interval:
            self.write_report(complete=False)

    def add_result(self, result: CaseResult, info: SuiteInfo) -> None:
        self.suites.setdefault(info.suite, info)
        self.state.add(result)
        if (info.gate is not None and not info.gate.is_empty()) or self.settings.gate is not None:
            self.gated_failures.add(result.nodeid)

    def report_data(self, complete: bool) -> dict[str, Any]:
        extra: dict[str, Any] = {'interrupted': self.interrupted} if self.interrupted else {}
        if self.settings.rescore:
            from ._rescore import rescore_report_fields  # only a re-scoring run pays for importing it

            extra.update(rescore_report_fields(self.settings.rescore))
        return build_report(
            run_id=self.run_id,
            started_at=self.started_at,
            finished_at=_now() if complete else None,
            complete=complete,
            suites=list(self.suites.values()),
            cases=self.state.ordered(),
            session_gate=self.settings.gate,
            expected=self.expected,
            shard=self.settings.shard,
            extra=extra or None,
        )

    def write_report(self, complete: bool) -> dict[str, Any] | None:
        t0 = time.monotonic()
        data = self.report_data(complete)
        try:
            write_json_atomic(self.settings.report, data)
        except OSError as e:
            self.harness_errors.append(f'could not write the report {self.settings.report}: {e}')
            return data
        finally:
            self._last_write = time.monotonic()
            self._write_cost = self._last_write - t0
        self.report_written = True
        return data


def _fixture_params(runtime: SuiteRuntime) -> tuple[str, ...]:
    return tuple(inspect.signature(runtime.fn).parameters)[1:]


def _anchor(nodeid: str) -> str:
    return 'case-' + uuid.uuid5(uuid.NAMESPACE_URL, nodeid).hex[:16]


def suite_info(runtime: SuiteRuntime) -> SuiteInfo:
    spec = runtime.spec
    return SuiteInfo(
        suite=runtime.suite_id,
        name=runtime.name,
        dataset=runtime.dataset.name,
        dataset_path=runtime.dataset_path,
        gate=spec.gate,
        pass_k=spec.pass_k,
        repeat=spec.repeat,
    )


def _junit_properties(result: CaseResult) -> list[tuple[str, object]]:
    props: list[tuple[str, object]] = [
        ('evaltrace.status', result.status),
        ('trace_id', result.trace_id or ''),
        ('trace_url', result.trace_url or ''),
        ('cost_usd', f'{result.usage.cost_usd:.8f}'),
        ('input_tokens', result.usage.input_tokens),
        ('output_tokens', result.usage.output_tokens),
    ]
    props.extend((f'score.{name}', ev.value) for name, ev in result.scores.items())
    props.extend((f'assertion.{name}', bool(ev.value)) for name, ev in result.assertions.items())
    return props
