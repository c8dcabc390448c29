"""The state of one pytest session with eval suites: settings, tracing, suite runs, results and the report (the
results and the report are kept by its base, `keeper.ReportKeeper`).

Lives in `config.stash` (see plugin.py). Each process (each xdist worker) has one scheduler that runs every case it
selected (see `schedule.scheduler`); an item waits for its own case only. Under pytest-xdist each worker ships every case result
to the controller on its test report; only the controller (or a run without xdist) writes the report and summary.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor
from pydantic_evals.reporting import EvaluationReport

from ..collect.items import CaseParam, SuiteRuntime, suite_run_id
from ..collect.shard import SHARD_PLAN_KEY
from ..judge.exit import EXIT_HARNESS_ERROR  # re-exported: where tests of a run's exit status have long found it
from ..judge.failure import failure_message, traceback_style
from ..names import STATUS_ATTRIBUTE
from ..report.baseline import BaselineError, load_baseline
from ..report.parts import SuiteInfo
from ..results.case import CaseResult
from ..run.case import CaseWork, SuiteRunContext, make_task, run_case
from ..run.experiment import Experiment, experiment_summary, render_table, run_report_check
from ..run.faults import FaultPolicy, enter_provider_faults
from ..run.replay import ReplayConfig
from ..run.suite_runs import (
    SuiteRun,
    early_fixtures,
    fixture_params,
    hold_teardown,
    plan_suite_runs,
    release_teardown,
    run_held_finalizers,
)
from ..safety.bounds import BoundAttributesProcessor
from ..safety.scrub import SecretScrubber
from ..safety.streams import OutputRouting, mark_case
from ..schedule.scheduler import CaseJob, Lane, Scheduler, wait
from ..settings.values import show_command, suite_record_mode
from ..trace.links import LinkTarget, case_anchor, project_url_from_credentials
from ..trace.tracing import TraceSetup, setup_tracing
from .keeper import ReportKeeper

if TYPE_CHECKING:
    from ..run.rescore import StandIns

__all__ = ('EXIT_HARNESS_ERROR', 'EvalSession')


@dataclass
class EvalSession(ReportKeeper):
    """Everything evaltrace keeps for one session: its tracing, its suite runs and their scheduling, and (from
    `ReportKeeper`) its results and report."""

    trace: TraceSetup | None = None
    links: LinkTarget | None = None
    failed_nodeids: set[str] = field(default_factory=set[str])
    harness_warnings: list[str] = field(default_factory=list[str])
    batch_mode: bool = True
    scheduler: Scheduler | None = None
    runs: dict[str, SuiteRun] | None = None
    run_of: dict[str, SuiteRun] = field(default_factory=dict[str, SuiteRun])
    order: dict[str, int] = field(default_factory=dict[str, int])
    started_early: bool = False
    closed: bool = False
    """Scheduling has ended: no case runs any more."""
    base_context: contextvars.Context | None = None
    """The context before the first eval item was set up: suite runs that start ahead of their items run in it."""
    output: OutputRouting | None = None
    """The routed `sys.stdout` and `sys.stderr`, installed before pytest's capture (none with the plugin loaded late)."""

    # ---- running (any process that runs items) ----

    @functools.cached_property
    def scrubber(self) -> SecretScrubber:
        """The session's scrubber, for what leaves the process: case results and pytest's captured output."""
        return SecretScrubber(self.settings.scrub_patterns, max_value_chars=self.settings.max_value_chars)

    def scrub_report(self, report: pytest.TestReport) -> None:
        """Scrub what pytest shows of an item: its captured output (stdout, stderr, log) and its failure.

        A case may print or log a credential, and a fixture may raise with one. Cases run on the scheduler's
        thread, so a case's output may be captured by another item: every item is scrubbed while an eval session
        runs. A failure that held a secret becomes its scrubbed text (pytest's colours are lost for it alone).
        """
        if report.sections:
            report.sections = [(title, self.scrubber.scrub_text(text)) for title, text in report.sections]
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):  # a tuple: a skip's location
            text = str(report.longrepr)
            scrubbed = self.scrubber.scrub_text(text)
            if scrubbed != text:
                report.longrepr = scrubbed

    def attach_case_output(self, report: pytest.TestReport) -> None:
        """Add to a case's item report what its case printed while pytest's capture was suspended, scrubbed.

        At the call (the case's verdict, after its item waited for it), or the teardown for what came later.
        """
        if self.output is not None and report.when in ('call', 'teardown'):
            report.sections.extend(self.output.sections(report.nodeid, report.when))

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
            extra: list[SpanProcessor] = [BoundAttributesProcessor(s.max_value_chars)]
            if s.store is not None:
                from ..store.spool import spool_span_processor

                extra.append(spool_span_processor(s.store, self.run_id, extra_patterns=s.scrub_patterns))
            self.trace = setup_tracing(
                service_name=s.service_name,
                environment=s.environment,
                instrument_pydantic_ai=s.instrument_pydantic_ai,
                instrument_httpx=s.instrument_httpx,
                extra_processors=extra,
                scrubber=self.scrubber,
            )
        return self.trace

    def close_tracing(self) -> None:
        """Flush this process's spans to its spool; the store imports the spool when it is next queried."""
        if self.trace is not None:
            self.trace.close()
        if self.is_worker or self.settings.store is None or (self.trace is None and not self.state.cases):
            return
        from ..store.files import spooled_runs, write_retention

        store, keep = self.settings.store, self.settings.retention
        try:
            write_retention(store, keep)
            # Merge only when more runs wait than are kept, so an unqueried store stays bounded; else the next
            # query merges (`open_store`), and the run does not pay for DuckDB.
            if keep and len(spooled_runs(store)) > keep:
                from ..store.duckdb import merge_spool

                self.harness_warnings.extend(merge_spool(store, keep_runs=keep).notices)
        except Exception as e:  # StoreError, OSError: the spans are still in the spool for the next query
            self.harness_warnings.append(f'local trace store not updated: {e}')

    def run_item(self, item: pytest.Function, param: CaseParam) -> None:
        """Start the item's suite run if it has not started, wait for the item's own case, and raise its verdict."""
        job = self._job_for(item, param)
        tick = self.progress.tick if self.progress is not None else None
        try:
            # The scheduler's wait: the loop runs on undisturbed until it is idle (see schedule.scheduler).
            result: CaseResult = self._scheduler().wait(job.future, tick)
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            pytest.skip('evaltrace: the run stopped before this case finished')
        run = self.run_of.get(item.nodeid)
        if run is not None and result.repeats > 1 and result.status in ('failed', 'error'):
            # Whether a failing repeat fails the run depends on its case's other runs (k-of-n, see
            # `views.outcome.is_gated_failure`): wait for them, so the verdict never depends on which ended first.
            # Only the runs started in this process: under a `--dist` mode that splits suites (no batch mode),
            # the others start at their own items, or run on other workers (see the README, "Gated failures").
            for nodeid in run.repeats_of[param.case_name]:
                job_of_other = run.jobs.get(nodeid)
                if nodeid != item.nodeid and job_of_other is not None:
                    _wait_ended(job_of_other, tick)
        if run is not None and run.items[-1][0] is item:
            wait(run.done, tick)  # the last item reports the suite run's experiment too (its report, under xdist)
        item.user_properties.extend(_junit_properties(result))
        if result.status == 'skipped':  # the task called pytest.skip or pytest.xfail (see run.case._outcome_result)
            (pytest.xfail if result.xfailed else pytest.skip)(result.failures[0] if result.failures else '')
        if result.status in ('failed', 'error'):
            hint = (
                None if self.link_target().is_remote else f'see its trace: {show_command(self.settings, result.nodeid)}'
            )
            pytest.fail(failure_message(result, hint, traceback_style(item.config.option)), pytrace=False)

    # ---- scheduling (see schedule.scheduler and run.suite_runs) ----

    def _plan(self, items: list[pytest.Item]) -> dict[str, SuiteRun]:
        if self.runs is None:
            default_cap = self.settings.max_concurrency
            self.runs = plan_suite_runs(items, lambda rt: rt.spec.max_concurrency or default_cap)
            self.order = {it.nodeid: i for i, it in enumerate(items)}
            self.run_of = {it.nodeid: run for run in self.runs.values() for it, _ in run.items}
        return self.runs

    def _scheduler(self) -> Scheduler:
        if self.scheduler is None:
            s = self.settings
            policy = FaultPolicy(s.retry_attempts, s.retry_max_delay, s.rate_limit_rpm, s.rate_limit_tpm)
            # The heap that exists before the first case (collected items, modules) is left out of full
            # collections while cases run: every collection walked it again, about 0.4 s per thousand cases.
            gc.freeze()
            if self.output is not None:  # from now on, what cases print outside pytest's capture is kept or scrubbed
                self.output.arm(self.scrubber.scrub_text)
            self.scheduler = Scheduler(s.session_concurrency, setup=lambda: enter_provider_faults(policy))
        return self.scheduler

    def _job_for(self, item: pytest.Function, param: CaseParam) -> CaseJob:
        runs = self._plan(item.session.items)
        run = self.run_of.get(item.nodeid)
        if run is None:  # an item that may be skipped (see run.suite_runs): a suite run of its own
            run = SuiteRun(suite_run_id(item, param), param.suite, Lane(1), items=[(item, param)])
        if item.nodeid not in run.jobs:
            fixtures = {name: item.funcargs[name] for name in fixture_params(run.runtime)}
            self._start(run, [(item, param)] if not self.batch_mode else run.items, fixtures, None, holder=item)
            if not self.started_early and not self.is_worker:
                self.started_early = True
                for other in runs.values():  # in pytest's order: an item reached sooner runs sooner
                    if not other.jobs and (values := early_fixtures(other, item)) is not None:
                        self._start(other, other.items, values, self.base_context, holder=None)
        return run.jobs[item.nodeid]

    def _start(
        self,
        run: SuiteRun,
        items: list[tuple[pytest.Function, CaseParam]],
        fixtures: dict[str, Any],
        context: contextvars.Context | None,
        holder: pytest.Item | None,
    ) -> None:
        scheduler = self._scheduler()
        setup = self.tracing()  # before the experiment's span: logfire is configured on first use
        if not run.jobs:  # once per suite run (a walk of the provider's tree): not per item where suites are split
            setup.watch_new_exporters()  # one this suite's fixtures added sends scrubbed copies too
        runtime = run.runtime
        links = self.link_target()
        info = run.suite_info()
        run.holder = holder if self.batch_mode else None
        if self.batch_mode and run.experiment is None:
            # One experiment per suite run; under xdist modes that split a suite, its cases have no single home.
            spec = runtime.spec
            run.experiment = Experiment(
                name=run.experiment_name,
                task_name=runtime.fn.__name__,
                dataset=runtime.dataset,
                metadata=spec.metadata,
                repeat=spec.repeat,
                n_cases=len({p.case_name for _, p in run.items}),
                case_spans=setup.exported,
            )
            run.experiment.start()
        elif not self.batch_mode and not run.done.done():
            run.done.set_result(None)

        def on_result(result: CaseResult) -> None:  # on the scheduler's thread
            result.trace_url = links.url(result.trace_id, result.span_id, anchor=case_anchor(result.nodeid))
            runtime.results[result.nodeid] = result
            self.case_finished(result, info)

        stand_ins: StandIns | None = None
        if self.settings.rescore is None:
            task, replay = make_task(runtime.bound_fn(holder or items[0][0]), fixtures), self._replay_config(runtime)
        else:  # re-scoring: each case's stored output stands in for the task (see run.rescore)
            from ..run.rescore import stand_ins as load_stand_ins

            stand_ins = load_stand_ins(self.settings, runtime, run.run_id, [it.nodeid for it, _ in items])
            task, replay = stand_ins.task(items[0][0].nodeid), stand_ins.replay  # and each case its own, below
        shared = SuiteRunContext(
            task=task,
            dataset=runtime.dataset,
            spec=runtime.spec,
            suite_id=run.run_id,
            suite_name=runtime.name,
            timeout=runtime.spec.timeout or self.settings.timeout,
            setup=setup,
            replay=replay,
            scrubber=self.scrubber,
            on_result=on_result,
            experiment=run.experiment,
            on_ended=functools.partial(self._case_ended, run),
            shard=self._shard(items[0][0]),
        )
        base = context if context is not None else contextvars.copy_context()
        jobs: list[CaseJob] = []
        for it, p in items:
            if it.nodeid in run.jobs:
                continue
            work = CaseWork(p.case, p.case_name, it.nodeid, p.repeat, p.repeats)
            case_run = (
                shared
                if stand_ins is None
                else dataclasses.replace(
                    shared, task=stand_ins.task(it.nodeid), stored_duration=stand_ins.duration(it.nodeid)
                )
            )
            context = scheduler.job_context(base)
            mark_case(context, it.nodeid)  # what the case prints is its item's (see safety.streams)
            job = CaseJob(self.order.get(it.nodeid, 0), run.lane, functools.partial(run_case, work, case_run), context)
            job.future.add_done_callback(run.settle)
            run.jobs[it.nodeid] = job
            jobs.append(job)
        if self.progress is not None and jobs:
            self.progress.started(run.run_id, len(jobs))
        scheduler.submit(jobs)

    def _case_ended(self, run: SuiteRun) -> None:
        """On the loop, after each case: when the suite run's last case has ended, finish its experiment."""
        run.ended += 1
        if run.ended == len(run.items) and run.experiment is not None:
            asyncio.get_running_loop().create_task(self._finish_experiment(run))

    async def _finish_experiment(self, run: SuiteRun) -> None:
        """Build the suite run's report, run its report evaluators, and put what they found in its suite info."""
        experiment = run.experiment
        try:
            if experiment is not None and experiment.report is None:
                report = await experiment.finish()
                # A user's check: off the loop, like a sync evaluator (see run.case.off_loop).
                checks = await asyncio.to_thread(run_report_check, run.runtime.spec.report_check, report)
                table = self._table(run, report)
                summary = experiment_summary(report, self.link_target().project_url, checks, table)
                with self.lock:
                    run.info = dataclasses.replace(run.suite_info(), experiment=summary)
                    if run.run_id in self.suites:
                        self.suites[run.run_id] = run.info
        except Exception as e:  # the experiment is a view of the cases: it never loses one
            with self.lock:
                self.harness_warnings.append(f'{run.run_id}: experiment not recorded: {type(e).__name__}: {e}')
        finally:
            if not run.done.done():
                run.done.set_result(None)

    def _table(self, run: SuiteRun, report: EvaluationReport[Any, Any, Any]) -> str | None:
        """pydantic-evals' table of the suite run, as the `table` setting asks, against the baseline if there is one."""
        which = self.settings.table
        if which == 'none':
            return None
        results = run.runtime.results
        failing = {
            outcome.name
            for nodeid, outcome in (run.experiment.outcomes.items() if run.experiment is not None else ())
            if nodeid in results and results[nodeid].status in ('failed', 'error')
        }
        baseline_cases: dict[str, Any] | None = None
        try:
            baseline = load_baseline(self.settings.baseline)
        except BaselineError:
            baseline = None  # the summary reports an unusable baseline already (see session.end)
        if baseline is not None:
            suites: dict[str, dict[str, Any]] = baseline.get('suites', {})
            baseline_cases = (suites.get(run.run_id) or {}).get('cases')
        return render_table(report, which, failing, baseline_cases)

    def before_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Hold back the teardown of a suite run's fixtures until its last case has finished (see run.suite_runs).

        They are released at the teardown of the suite run's last item before pytest moves on to another: the items
        between re-request them, and must find the same values (pytest's cache), not make new ones. pytest keeps one
        value per function-scoped fixture, so when it moves on to an item of another suite run (pytest interleaves
        suite runs, e.g. `[x-]`, `[x-b]`, `[y-]`, `[y-b]`), that item must not find them cached: it needs values of
        its own (its instance's autouse fixtures run), and tearing them down then would pull them from under this
        suite run's cases. So the teardown waits for this suite run's cases to finish first.

        The held teardown is given back to pytest as the last item's own, not run here: pytest reports what it raises
        as that item's teardown error, and still tears the item down. An error raised from this hook would end the
        teardown before pytest's, and leave the item set up under the next one (whose setup then fails with
        "previous item was not torn down properly").
        """
        run = self.run_of.get(item.nodeid)
        if run is None:
            return
        leaving = self.run_of.get(nextitem.nodeid if nextitem is not None else '') is not run
        if run.holder is item and not run.finished():
            if leaving:
                self._wait_finished(run, item)  # then pytest tears the holder's fixtures down as usual
            else:
                run.held = hold_teardown(item)
        elif run.held and leaving:
            self._wait_finished(run, item)
            release_teardown(item, run.held)

    def _wait_finished(self, run: SuiteRun, item: pytest.Item) -> None:
        """Wait until every started case of the suite run has ended (or was cancelled).

        When the session stops (`-x`, `--maxfail`: pytest tears the item down with no next item), the cases not
        finished yet are cancelled first, as they would be right after this teardown.
        """
        if item.session.shouldfail or item.session.shouldstop:
            self.stop_scheduling()
        tick = self.progress.tick if self.progress is not None else None
        for job in list(run.jobs.values()):
            _wait_ended(job, tick)

    def stop_scheduling(self) -> None:
        """Cancel every case not finished yet (`-x`, `--maxfail`, Ctrl-C, the session's end)."""
        if self.scheduler is not None:
            self.scheduler.cancel_all()

    def close_scheduling(self) -> None:
        """Stop the scheduler and run the fixture teardowns still held back; called once, at the session's end."""
        self.stop_scheduling()
        self.closed = True
        if self.scheduler is not None:
            for run in (self.runs or {}).values():  # a stopped run's experiment holds the cases that ended
                if run.experiment is not None and run.experiment.report is None:
                    self.scheduler.call(functools.partial(self._finish_experiment, run))
            self.scheduler.close()
            # The run's results join the heap left out of full collections: the session's end builds the report
            # and the page over them, and each full collection would walk every case again (0.1-0.2 s per
            # thousand cases). `release_heap` gives the heap back to the collector.
            gc.freeze()
        if self.output is not None:  # what cases printed that no item report carried
            self.output.release()
        for run in (self.runs or {}).values():
            if run.held:
                try:
                    run_held_finalizers(run.held)
                except Exception as e:
                    self.harness_errors.append(f'{run.run_id}: fixture teardown failed: {type(e).__name__}: {e}')

    def release_heap(self) -> None:
        """Give the heap that `_scheduler` and `close_scheduling` froze back to the garbage collector."""
        if self.scheduler is not None:
            gc.unfreeze()

    def not_finished(self) -> dict[str, list[str]]:
        return self.not_run() if self.closed else {}

    def not_run(self) -> dict[str, list[str]]:
        """The selected cases that did not finish, by why: cancelled while running, or never started."""
        out: dict[str, list[str]] = {'cancelled': [], 'not started': []}
        for run in (self.runs or {}).values():
            for nodeid, why in run.outcomes():
                if nodeid not in self.state.cases:
                    out[why].append(nodeid)
        return out

    def run_size(self, item: pytest.Item) -> int:
        """How many cases the item's suite run has in this process."""
        run = self.run_of.get(item.nodeid)
        return len(run.items) if run is not None else 1

    def suite_info_of(self, item: pytest.Item, param: CaseParam) -> SuiteInfo:
        run = self.run_of.get(item.nodeid)
        if run is None:
            run = SuiteRun(suite_run_id(item, param), param.suite, Lane(1))
        return run.suite_info()

    def finished_results(self) -> list[tuple[CaseResult, SuiteInfo]]:
        """Every case result this process has, with its suite run."""
        out: list[tuple[CaseResult, SuiteInfo]] = []
        for run in (self.runs or {}).values():
            out.extend(
                (run.runtime.results[it.nodeid], run.suite_info())
                for it, _ in run.items
                if it.nodeid in run.runtime.results
            )
        return out

    def _shard(self, item: pytest.Item) -> tuple[int, int]:
        # The plan's, when collection made one: a re-scoring of one shard's run is that shard (see `collect.shard`).
        plan = item.config.stash.get(SHARD_PLAN_KEY, None)
        return self.settings.shard if plan is None else (plan.index, plan.count)

    def _replay_config(self, runtime: SuiteRuntime) -> ReplayConfig | None:
        # Live (no cassette) unless the `record` setting or the suite turns recording on.
        mode = suite_record_mode(self.settings, runtime.spec.record)
        s = self.settings
        return None if mode is None else ReplayConfig(mode, s.cassettes, s.scrub_patterns)


def _wait_ended(job: CaseJob, tick: Callable[[], None] | None) -> None:
    """Wait until another item's case has ended, however it ended: that item reports how."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        wait(job.future, tick)


def _junit_properties(result: CaseResult) -> list[tuple[str, object]]:
    usage = result.usage  # summed on each read
    props: list[tuple[str, object]] = [
        (STATUS_ATTRIBUTE, result.status),
        ('trace_id', result.trace_id or ''),
        ('trace_url', result.trace_url or ''),
        ('cost_usd', f'{usage.cost_usd:.8f}'),
        ('input_tokens', usage.input_tokens),
        ('output_tokens', usage.output_tokens),
    ]
    props.extend((f'score.{name}', ev.value) for name, ev in result.scores.items())
    props.extend((f'assertion.{name}', bool(ev.value)) for name, ev in result.assertions.items())
    return props
