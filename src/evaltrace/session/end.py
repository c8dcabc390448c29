"""The end of a session: the final report, the CI outputs, and the exit status, set in this one place from the
run's verdict (`report.decide.decide`, the one rule every output uses).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import pytest

from ..collect.items import CaseParam, case_param
from ..collect.shard import SHARD_PLAN_KEY
from ..judge.gates import logical_cases
from ..report.baseline import BaselineError, load_baseline
from ..report.decide import SETUP_ERROR, decide, gate_failures, report_verdict
from ..report.final import BaselineInput, Report
from ..report.journal import remove_journal, run_results
from ..report.parts import SuiteInfo, write_json_atomic
from ..results.case import CaseResult
from ..safety.scrub import scrub_case_result
from ..settings.values import Settings
from ..views.ci import line_writer, write_ci_outputs
from ..views.outcome import report_gate_failures
from .state import EvalSession

__all__ = ('FINAL_REPORT_KEY', 'baseline_input', 'final_report', 'finish_session', 'setup_error_results')

FINAL_REPORT_KEY = pytest.StashKey['Report']()


def final_report(config: pytest.Config) -> Report | None:
    """The run's report as finally written (with the baseline comparison and the verdict), once `finish_session`
    has run."""
    return config.stash.get(FINAL_REPORT_KEY, None)


def passing_by_k_of_n(cases: list[CaseResult], pass_k: Mapping[str, int]) -> set[str]:
    """Node ids of the runs of repeated cases that pass by the k-of-n rule, failing runs included (pure)."""
    return {r.nodeid for lc in logical_cases(cases, pass_k) if lc.passed and lc.n > 1 for r in lc.runs}


def baseline_input(settings: Settings) -> tuple[BaselineInput, str | None]:
    """The baseline the run compares with, as its report names it, and the error that makes it unusable."""
    try:
        return BaselineInput(_display(settings), load_baseline(settings.baseline)), None
    except BaselineError as e:
        return BaselineInput(_display(settings), None, str(e)), str(e)


def _display(settings: Settings) -> str:
    try:
        return str(settings.baseline.relative_to(settings.rootdir))
    except ValueError:
        return str(settings.baseline)


def _skipped_nodeids(session: pytest.Session) -> set[str]:
    skipped = {item.nodeid for item in session.items if item.get_closest_marker('skip') is not None}
    reporter: Any = session.config.pluginmanager.get_plugin('terminalreporter')
    if reporter is not None:
        reports: list[Any] = reporter.stats.get('skipped', [])
        skipped.update(str(getattr(r, 'nodeid', '')) for r in reports)
    return skipped


def setup_error_results(session: pytest.Session, expected: list[str], ran: Mapping[str, Any]) -> list[CaseResult]:
    """An error result for each eval case whose pytest item could not be set up (a fixture it asks for is missing,
    or raised), with pytest's message: the case is accounted for (not "never ran"), and fails the run."""
    reporter: Any = session.config.pluginmanager.get_plugin('terminalreporter')
    if reporter is None:
        return []
    wanted = set(expected)
    results: list[CaseResult] = []
    for report in reporter.stats.get('error', []):
        nodeid = str(getattr(report, 'nodeid', ''))
        if getattr(report, 'when', None) != 'setup' or nodeid not in wanted or nodeid in ran:
            continue
        longrepr: Any = getattr(report, 'longrepr', None)
        message = str(getattr(longrepr, 'errorstring', '') or '').strip() or _last_error_line(report)
        suite_id, _, rest = nodeid.partition('[')
        case = rest.rsplit(']', 1)[0].split('#', 1)[0]
        failure = f'setup failed: {message.splitlines()[0] if message else "see the test report"}'
        results.append(
            CaseResult(
                suite=suite_id,
                case=case,
                nodeid=nodeid,
                status='error',
                failures=[failure],
                error={'type': SETUP_ERROR, 'message': message, 'traceback': str(longrepr or '')},
            )
        )
    return results


def _last_error_line(report: Any) -> str:
    text = str(getattr(report, 'longreprtext', '') or '')
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith('E ')]
    return errors[-1] if errors else (text.strip().splitlines() or [''])[-1]


def finish_session(session: pytest.Session, state: EvalSession) -> None:
    """Write the final report and the CI outputs, and set the session's exit status."""
    config = session.config
    if config.option.collectonly:
        return
    # Cases that finished in this process but whose items never reported (an interrupt, -x) still count.
    for result, info in state.finished_results():
        if result.nodeid not in state.state.cases:
            state.add_result(result, info)
    # A skipped case (--evaltrace-skip, a skip mark, pytest.skip in a fixture) was never meant to run.
    selected = bool(state.expected)
    skipped = _skipped_nodeids(session)
    state.expected = [n for n in state.expected if n not in skipped]
    # A case whose item could not be set up ran no further: an error of its own, not a case that never ran.
    items = {item.nodeid: item for item in session.items}
    for result in setup_error_results(session, state.expected, state.state.cases):
        param = case_param(items[result.nodeid]) if result.nodeid in items else None
        if isinstance(param, CaseParam):
            result.case, info = param.case_name, state.suite_info_of(items[result.nodeid], param)
        else:  # under xdist the controller has no items: the suite is known by its node id
            info = state.suites.get(result.suite) or SuiteInfo(result.suite, result.suite.rsplit('::', 1)[-1], '')
        result.suite = info.suite  # the suite run's id
        state.add_result(scrub_case_result(result, state.scrubber), info)
    # -x, --maxfail: pytest stopped after a failure (serially it says 1, under xdist 2); not after a signal.
    stopped = bool(session.shouldfail) and state.interrupted is None
    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop) or stopped
    nothing_selected = not selected or state.settings.skip
    if nothing_selected and not state.expected and not state.state.cases and state.settings.shard[1] == 1:
        # No eval case selected (`-m "not evaltrace"`, `--evaltrace-skip`, `-k` on other tests): the last real run's
        # report and HTML page stay as they are, for `evaltrace show` and `baseline save`. A run whose every selected
        # case was skipped (a skip mark, a fixture's pytest.skip when CI has no API key) writes its own, as a shard
        # that got no case does (the merge needs every shard's): the last run's would pass for this one.
        state.close_tracing()
        return
    missing = [n for n in state.expected if n not in state.state.cases]
    if missing:  # a worker that died may have finished (and journaled) cases it never got to report
        for result, info in run_results(state.settings.report, state.run_id):
            if result.nodeid not in state.state.cases:
                state.add_result(result, info)
        missing = [n for n in state.expected if n not in state.state.cases]
    complete = not interrupted and not missing
    state.close_tracing()
    baseline, problem = baseline_input(state.settings)
    if problem is not None:
        state.harness_errors.append(problem)
    with state.lock:  # the one report of the run: stats, gates, baseline comparison and regression gates
        report = state.report_data(complete, plan=config.stash.get(SHARD_PLAN_KEY, None), baseline=baseline)
    failing = {c.nodeid for c in report.cases if c.status in ('failed', 'error')}
    if others := sorted(state.failed_nodeids - failing):  # in the report, so that a merge of shards fails on them
        report = dataclasses.replace(report, extra={**report.extra, 'other_failures': others})

    def decided() -> Report:
        verdict = decide(
            report,
            pytest_status=int(session.exitstatus),
            harness_errors=len(state.harness_errors),
            stopped=stopped,
        )
        return report.with_verdict(verdict)

    report = decided()
    data = report.to_json()
    written = state.write_final(data)  # written once; again only if evaltrace failed an output it owed
    if not written:
        report = decided()
        data = report.to_json()
    config.stash[FINAL_REPORT_KEY] = report
    if state.settings.html is not None:  # after close_tracing flushed the spool: the page draws the run's spans
        from ..views.html import write_html_safely

        write_html_safely(state.settings, data, state.harness_warnings, report)
    if state.journal is not None:
        state.journal.close()
    if written:
        remove_journal(state.settings.report, state.run_id)  # the report now holds every finished case

    write_line = line_writer(config.pluginmanager.get_plugin('terminalreporter'))
    errors = write_ci_outputs(report, markdown_path=state.settings.markdown, env=os.environ, write_line=write_line)
    if errors:  # evaltrace could not write what it owed: that changes the verdict, and the report says so
        state.harness_errors.extend(errors)
        report = decided()
        config.stash[FINAL_REPORT_KEY] = report
        if written:
            with contextlib.suppress(OSError):
                write_json_atomic(state.settings.report, report.to_json())
    verdict = report_verdict(report)
    session.exitstatus = verdict.exit_status
    # Last: a failed gate's own failed report reaches the terminal's counts and JUnit (written after this hook).
    report_gate_failures(config, gate_failures(report, verdict))
