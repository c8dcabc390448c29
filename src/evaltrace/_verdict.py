"""The session's verdict: the final report, and the exit status, adjusted in this one place.

By default a failing case fails the session like any failing test. A case in a gated suite (or under a session gate)
does not: only a failed gate does, with its own exit status. A repeated case that passes by the k-of-n rule does not
fail the session either, though its failing repeats are shown as failed items.

Exit statuses: 0 all good; 1 a test or an ungated case failed; 6 a gate failed (`EXIT_GATE_FAILED`); 7 evaltrace
could not do its job or the run is incomplete (`EXIT_HARNESS_ERROR`); pytest's own 2-5 are kept as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from ._baseline import BaselineError, apply_baseline, load_baseline
from ._ci import write_ci_outputs
from ._gates import Gate, logical_cases
from ._journal import remove_journal
from ._report import write_json_atomic
from ._results import CaseResult
from ._session import EXIT_GATE_FAILED, EXIT_HARNESS_ERROR, EvalSession
from ._settings import Settings
from ._shard import SHARD_PLAN_KEY, ShardPlan

__all__ = ('FINAL_REPORT_KEY', 'decide_exit_status', 'final_report', 'finalize_report', 'finish_session')

FINAL_REPORT_KEY = pytest.StashKey[dict[str, Any]]()


def final_report(config: pytest.Config) -> dict[str, Any] | None:
    """The report as finally written (with the baseline comparison), once `finish_session` has run."""
    return config.stash.get(FINAL_REPORT_KEY, None)


def decide_exit_status(
    exitstatus: int, non_gated_failures: int, gates_passed: bool, harness_errors: int, complete: bool
) -> int:
    """The exit status evaltrace reports (pure).

    pytest's own statuses other than 0 and 1 (interrupted, internal error, usage error, no tests) are kept as they
    are. Otherwise: 7 when the run is incomplete (cases expected but never run), 1 when a test or an ungated case
    failed, 6 when a gate failed, 7 when evaltrace itself failed (for example, could not write its report), else 0.
    """
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return exitstatus
    if not complete:
        return EXIT_HARNESS_ERROR
    if non_gated_failures:
        return pytest.ExitCode.TESTS_FAILED
    if not gates_passed:
        return EXIT_GATE_FAILED
    if harness_errors:
        return EXIT_HARNESS_ERROR
    return pytest.ExitCode.OK


def passing_by_k_of_n(cases: list[CaseResult], pass_k: Mapping[str, int]) -> set[str]:
    """Node ids of the runs of repeated cases that pass by the k-of-n rule, failing runs included (pure)."""
    return {r.nodeid for lc in logical_cases(cases, pass_k) if lc.passed and lc.n > 1 for r in lc.runs}


def finalize_report(
    data: dict[str, Any], settings: Settings, plan: ShardPlan | None, errors: list[str]
) -> dict[str, Any]:
    """Complete the report with what only the end of a session knows: the shard plan and the baseline comparison.

    Problems (an unreadable baseline) are appended to `errors`; the report is returned (mutated) either way.
    """
    if plan is not None:
        data['shard'] = {**data.get('shard', {}), **plan.to_dict()}
    shard_count = int(data.get('shard', {}).get('count', 1))
    gate: Gate | None = settings.gate
    try:
        baseline = load_baseline(settings.baseline)
    except BaselineError as e:
        errors.append(str(e))
        data['baseline'] = {'path': _display(settings), 'error': str(e)}
        return data
    return apply_baseline(
        data,
        baseline,
        baseline_path=_display(settings),
        session_gate=gate,
        removed_known=shard_count == 1,
    )


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
    skipped = _skipped_nodeids(session)
    state.expected = [n for n in state.expected if n not in skipped]
    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
    missing = [n for n in state.expected if n not in state.state.cases]
    complete = not interrupted and not missing
    data = state.write_report(complete=complete)
    state.close_tracing()
    if data is None:
        return
    data = finalize_report(data, state.settings, config.stash.get(SHARD_PLAN_KEY, None), state.harness_errors)
    if state.report_written:
        try:
            write_json_atomic(state.settings.report, data)
        except OSError as e:
            state.harness_errors.append(f'could not write the report {state.settings.report}: {e}')
    config.stash[FINAL_REPORT_KEY] = data
    if state.settings.html is not None:  # after close_tracing flushed the spool: the page draws the run's spans
        from ._html import write_html_safely

        write_html_safely(state.settings, data, state.harness_warnings)
    if state.journal is not None:
        state.journal.close()
    if state.report_written:
        remove_journal(state.settings.report)  # the report now holds every finished case

    reporter: Any = config.pluginmanager.get_plugin('terminalreporter')

    def write_line(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    state.harness_errors.extend(
        write_ci_outputs(data, markdown_path=state.settings.markdown, env=os.environ, write_line=write_line)
    )

    pass_k = {s.suite: s.pass_k for s in state.suites.values() if s.pass_k}
    forgiven = passing_by_k_of_n(state.state.ordered(), pass_k)
    non_gated = len(state.failed_nodeids - state.gated_failures - forgiven)
    gates_passed = bool(data['session']['gates_passed'])
    status = decide_exit_status(
        int(session.exitstatus), non_gated, gates_passed, len(state.harness_errors), complete or interrupted
    )
    session.exitstatus = status
