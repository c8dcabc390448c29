"""The pytest plugin: hooks, options and markers only. The work lives in the modules named for what they do.

Heavy imports (pydantic-evals, logfire) are deferred until an eval suite is collected, so a plain `pytest tests/`
pays almost nothing for having evaltrace installed.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .names import DIST_KEY, RUN_ID_KEY
from .safety.streams import ROUTING_KEY, install_routing, shown_as_it_comes
from .schedule.threads import TOKEN_CHECK_NOTES, token_check_as_daemon, token_check_notes
from .schedule.xdist import EXPECTED_KEY
from .settings.resolve import add_options, resolve_settings
from .settings.values import SETTINGS_KEY, settings_of

if TYPE_CHECKING:
    from .schedule.interrupt import InterruptGuard  # noqa: F401  (named in a StashKey below)
    from .session.state import EvalSession

SUITE_ATTR = '__evaltrace_suite__'
_session_key = pytest.StashKey['EvalSession']()
_interrupt_key = pytest.StashKey['InterruptGuard']()
_run_id_key = pytest.StashKey[str]()
_expected_sent_key = pytest.StashKey[bool]()  # on a worker: its expected cases went out on a report


def _run_id(config: pytest.Config) -> str:
    run_id = config.stash.get(_run_id_key, None)
    if run_id is None:
        import uuid

        run_id = config.stash[_run_id_key] = uuid.uuid4().hex[:12]
    return run_id


def eval_session(config: pytest.Config) -> EvalSession:
    """The session state; created on first use, once an eval suite is collected."""
    session = config.stash.get(_session_key, None)
    if session is None:
        from .schedule.xdist import batch_mode_for_worker
        from .session.state import EvalSession

        workerinput: dict[str, Any] | None = getattr(config, 'workerinput', None)
        is_worker = workerinput is not None
        session = EvalSession(
            settings_of(config),
            is_worker=is_worker,
            batch_mode=not is_worker or batch_mode_for_worker(config),
        )
        session.output = config.stash.get(ROUTING_KEY, None)
        session.run_id = workerinput[RUN_ID_KEY] if workerinput and RUN_ID_KEY in workerinput else _run_id(config)
        from .collect.items import selects_some_cases_only

        session.whole_selection = not selects_some_cases_only(config, session.settings.filter)
        config.stash[_session_key] = session
        if not is_worker:  # a worker's progress is shown by the controller, from its reports
            from .views.progress_view import progress_view

            session.progress = progress_view(config, session.settings.progress)
            if session.progress is not None:
                config.pluginmanager.register(session.progress.hooks(), 'evaltrace-progress')
            # Only a session with eval suites changes what Ctrl-C and SIGTERM do (see schedule.interrupt).
            from .schedule.interrupt import InterruptGuard

            guard = InterruptGuard()
            guard.install()
            config.stash[_interrupt_key] = guard
    return session


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


# tryfirst: outside pytest's capture plugin's own wrapper, which starts capturing before it yields.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None]:
    # Before pytest's capture starts, so the streams it saves, and puts back whenever it suspends, are evaltrace's
    # routed ones: what cases print in those moments is kept off the terminal (see safety.streams). The clean-up is
    # added before the capture plugin's, so it runs after it, once pytest has put them back for good.
    routing = early_config.stash[ROUTING_KEY] = install_routing(live=shown_as_it_comes(early_config))
    early_config.add_cleanup(routing.uninstall)
    # A conftest loaded now (`evals/conftest.py` under `pytest evals/`) may configure logfire itself: its token check
    # is contained as the session's is (see pytest_cmdline_main).
    with token_check_as_daemon(early_config.stash.setdefault(TOKEN_CHECK_NOTES, [])):
        return (yield)


def pytest_enter_pdb(config: pytest.Config) -> None:
    # `breakpoint()` in a case: pdb talks to the terminal from the case's thread, which must not be kept for a report.
    routing = config.stash.get(ROUTING_KEY, None)
    if routing is not None:
        routing.debugger(entered=True)


def pytest_leave_pdb(config: pytest.Config) -> None:
    routing = config.stash.get(ROUTING_KEY, None)
    if routing is not None:
        routing.debugger(entered=False)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, int | pytest.ExitCode, int | pytest.ExitCode]:
    # logfire's pytest plugin (and any conftest) may configure logfire and start its token check: see _threads.
    # What the check raises is kept for the summary: under filterwarnings=error, it would fail a test.
    with token_check_as_daemon(config.stash.setdefault(TOKEN_CHECK_NOTES, [])):
        return (yield)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'evaltrace: an eval suite bound to a Pydantic Evals dataset (set by @evaltrace.suite)'
    )
    # Resolved once, now: misuse is a UsageError at start-up, not a failure in the middle of the run, and every
    # reader sees the same values (`settings_of`).
    settings = config.stash[SETTINGS_KEY] = resolve_settings(config)
    if not hasattr(config, 'workerinput'):
        from .report.journal import recover_at_start

        recover_at_start(config, settings.report)  # killed runs' finished cases, before this run replaces them
    config.pluginmanager.register(_ReportListener(config), 'evaltrace-report-listener')
    from .views.outcome import GatedOutcome  # gated failures as their own outcome (see views.outcome)

    config.pluginmanager.register(GatedOutcome(config), 'evaltrace-gated-outcome')


def _skip_reason(config: pytest.Config) -> str | None:
    return 'evaltrace: eval suites skipped (--evaltrace-skip)' if eval_session(config).settings.skip else None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    from .collect.broken import EvalModule, mentions_evaltrace

    # A module of eval suites that fails to import is one error item, not a collection error that stops the session.
    if not mentions_evaltrace(module_path):
        return None
    return EvalModule.from_parent(parent, path=module_path)  # pyright: ignore[reportUnknownMemberType]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> pytest.Item | None:
    try:
        spec = getattr(obj, SUITE_ATTR, None)
    except Exception:  # any module attribute comes here, some with a __getattr__ that raises
        return None
    if spec is None or not collector.istestfunction(obj, name):
        return None
    from .collect.broken import broken_suite

    return broken_suite(collector, name, obj, spec, _skip_reason(collector.config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    spec = getattr(metafunc.function, SUITE_ATTR, None)
    if spec is None:
        return
    from .collect.items import parametrize_suite

    parametrize_suite(metafunc, spec, _skip_reason(metafunc.config))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(_session_key, None)
    if state is None:
        return
    from .collect.items import deselect_by_filter, fail_node_id_collisions
    from .collect.shard import apply_shard

    # trylast: `-k`, `--deselect` and `--lf` have already narrowed `items`; the filter narrows them by metadata,
    # and the shard splits what is left (so every shard plans from the same selection).
    # Collisions first, over the whole selection: a shard or the filter could otherwise keep one item of a pair
    # here and the other in another shard, whose reports are merged by node id.
    fail_node_id_collisions(items)
    if state.settings.filter is not None:
        deselect_by_filter(config, items, state.settings.filter)
    plan = apply_shard(config, items, state.settings.shard)
    if state.settings.rescore is not None:
        from .run.rescore_load import leave_out_other_shards

        leave_out_other_shards(config, items, plan, state.settings)


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    # What another plugin deselects (the command line's own selection is read in `eval_session`).
    if not items:
        return
    state = items[0].config.stash.get(_session_key, None)
    if state is not None:
        from .collect.items import CaseParam, case_param

        if any(isinstance(case_param(item), CaseParam) for item in items):
            state.whole_selection = False


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(_session_key, None)
    if state is None:
        return
    from .collect.items import CaseParam, case_param

    # The cases the report expects, from the final selection: `--lf` on a file deselects the passed items in a
    # wrapper around every `pytest_collection_modifyitems`, so after the one above.
    state.expected = [it.nodeid for it in session.items if isinstance(case_param(it), CaseParam)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _session_key not in item.config.stash:
        return
    from .collect.items import DatasetProblem, case_param

    param = case_param(item)
    if isinstance(param, DatasetProblem):
        pytest.fail(param.message, pytrace=False)
    state = item.config.stash[_session_key]
    if param is not None and state.base_context is None:
        import contextvars

        # Before any fixture of the first eval item (see run.suite_runs).
        state.base_context = contextvars.copy_context()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    state = item.config.stash.get(_session_key, None)
    if state is not None:
        state.before_teardown(item, nextitem)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    result = yield
    state = item.config.stash.get(_session_key, None)
    if state is not None and (item.session.shouldfail or item.session.shouldstop):
        state.stop_scheduling()  # -x, --maxfail: cases not finished yet are cancelled, none is started
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if _session_key not in pyfuncitem.config.stash:
        return None
    from .collect.items import CaseParam, case_param

    param = case_param(pyfuncitem)
    if not isinstance(param, CaseParam):
        return None
    eval_session(pyfuncitem.config).run_item(pyfuncitem, param)
    return True


# tryfirst: the outermost wrapper, so it sees the report after GatedOutcome has decided whether it is a failure.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.config.stash.get(_session_key, None)
    if state is None:
        return report
    state.scrub_report(report)
    state.attach_case_output(report)
    from .collect.items import CaseParam, case_param

    param = case_param(item) if call.when == 'call' else None
    if report.failed and isinstance(param, CaseParam) and item.config.option.tbstyle == 'line':
        failed = call.excinfo.value if call.excinfo is not None else None
        if isinstance(failed, pytest.fail.Exception) and not failed.pytrace:  # the case's verdict (run_item)
            from .judge.failure import one_line_longrepr

            lineno = item.location[1]
            report.longrepr = one_line_longrepr(str(item.path), (lineno or 0) + 1, str(failed.msg))
    # Only an xdist worker ships results on the report: a process that ran the case has it already (case_finished).
    if not hasattr(item.config, 'workerinput'):
        return report
    if call.when == 'setup' and not item.config.stash.get(_expected_sent_key, False):
        item.config.stash[_expected_sent_key] = True
        setattr(report, EXPECTED_KEY, state.expected)
    if isinstance(param, CaseParam):
        from .session.keeper import CASE_REPORT_ATTR, PROGRESS_REPORT_ATTR, SUITE_REPORT_ATTR

        result = param.suite.results.get(item.nodeid)
        if result is not None:
            try:
                state = eval_session(item.config)
                info = state.suite_info_of(item, param)
                setattr(report, CASE_REPORT_ATTR, result.to_dict())
                setattr(report, SUITE_REPORT_ATTR, info.to_dict())
                worker: Any = getattr(item.config, 'workerinput', {}).get('workerid')
                setattr(report, PROGRESS_REPORT_ATTR, {'total': state.run_size(item), 'worker': worker})
            except Exception:  # a harness bug here must not become an INTERNALERROR that hides every result
                import traceback

                report.outcome = 'failed'
                report.longrepr = f'evaltrace internal error while reporting this case:\n{traceback.format_exc()}'
    return report


class _ReportListener:
    """Receives every test report (from xdist workers too) and hands eval results to the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(self.config, 'workerinput'):
            return
        state = self.config.stash.get(_session_key, None)
        expected = getattr(report, EXPECTED_KEY, None)
        if expected:
            self._expect(expected)
            state = self.config.stash[_session_key]
        if getattr(report, 'evaltrace_case', None) is not None:
            state = eval_session(self.config)
            try:
                state.on_report(report)
            except Exception as e:  # contained: the case's result is still in the journal and the final report
                state.harness_errors.append(f'{report.nodeid}: {type(e).__name__}: {e}')
        if state is not None and report.failed:
            state.failed_nodeids.add(report.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # Every worker writes its spans under the controller's run id (made here, without starting a session:
        # the controller does not collect, and a run with no eval suite must leave nothing behind).
        node.workerinput[RUN_ID_KEY] = _run_id(self.config)
        node.workerinput[DIST_KEY] = self.config.getoption('dist', 'no')  # see schedule.xdist.batch_mode_for_worker

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from .collect.shard import record_worker_plan

        record_worker_plan(self.config, getattr(node, 'workeroutput', {}))
        expected = getattr(node, 'workeroutput', {}).get(EXPECTED_KEY)
        if expected:
            self._expect(expected)

    def _expect(self, expected: list[str]) -> None:
        # Every worker collects the same items, so the first list to arrive is the list.
        state = eval_session(self.config)
        if not state.expected:
            state.expected = list(expected)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from .schedule.xdist import make_scheduler

        return make_scheduler(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_session_key, None)
    if state is None:
        return
    state.close_scheduling()
    if state.progress is not None:
        state.progress.close()  # before pytest's summary: the block erased, or what never ran said
    if state.is_worker:
        state.close_tracing()
        workeroutput: dict[str, Any] = getattr(session.config, 'workeroutput')  # noqa: B009  (set by xdist on workers)
        workeroutput[EXPECTED_KEY] = state.expected
        return
    from .session.end import finish_session

    guard = session.config.stash.get(_interrupt_key, None)
    if guard is not None and guard.received is not None:
        state.interrupted = guard.received
    elif session.exitstatus == pytest.ExitCode.INTERRUPTED and not session.shouldfail:  # not -x under xdist
        state.interrupted = 'interrupted'
    finish_session(session, state)


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_interrupt_key, None)
    if guard is not None:
        guard.uninstall()
    state = config.stash.get(_session_key, None)
    if state is not None:
        state.release_heap()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    for note in token_check_notes(config):
        terminalreporter.write_line(f'evaltrace: {note}', yellow=True)
    state = config.stash.get(_session_key, None)
    if state is None or state.is_worker:
        return
    from .session.end import final_report
    from .views.summary import summary_lines

    if not state.state.cases and final_report(config) is None:  # no eval case selected: no report written either
        return

    terminalreporter.write_sep('=', 'evaltrace summary')
    for line in summary_lines(final_report(config) or state.report_data(complete=True)):
        terminalreporter.write_line(line)
    for err in state.harness_errors:
        terminalreporter.write_line(f'evaltrace error: {err}', red=True)
    for warning in state.harness_warnings:
        terminalreporter.write_line(f'evaltrace warning: {warning}', yellow=True)
    telemetry = state.trace.telemetry if state.trace is not None else None
    if telemetry is not None and not telemetry.healthy:
        where = f'they are kept locally: `evaltrace show <case>` ({state.settings.store}) and {state.settings.report}'
        terminalreporter.write_line(telemetry.message(where) or '', yellow=True)
    if not state.report_failed:
        terminalreporter.write_line(f'report: {state.settings.report}')
