"""The session's verdict: the final report, and the exit status, adjusted in this one place.

By default a failing case fails the session like any failing test. A case in a gated suite (or under a session gate)
does not: only a failed gate does, with its own exit status.
"""

from __future__ import annotations

import pytest

from ._collect import EvalCaseItem
from ._session import EXIT_GATE_FAILED, EXIT_HARNESS_ERROR, EvalSession, suite_info

__all__ = ('decide_exit_status', 'finish_session')


def decide_exit_status(
    exitstatus: int, non_gated_failures: int, gates_passed: bool, harness_errors: int, complete: bool
) -> int:
    """The exit status evaltrace reports (pure).

    pytest's own statuses other than 0 and 1 (interrupted, internal error, usage error, no tests) are kept as they
    are. Otherwise: 1 when a test or an ungated case failed, 6 when a gate failed, 7 when evaltrace itself failed
    (for example, could not write its report), else 0.
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


def finish_session(session: pytest.Session, state: EvalSession) -> None:
    """Write the final report and set the session's exit status."""
    if session.config.option.collectonly:
        return
    # Cases that finished in this process but whose items never reported (an interrupt mid-batch) still count.
    for item in session.items:
        if isinstance(item, EvalCaseItem) and item.nodeid not in state.state.cases:
            result = item.evaltrace_suite.results.get(item.nodeid)
            if result is not None:
                state.add_result(result, suite_info(item.evaltrace_suite))
    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
    missing = [n for n in state.expected if n not in state.state.cases]
    complete = not interrupted and not missing
    data = state.write_report(complete=complete)
    if state.trace is not None:
        state.trace.close()
    if data is None:
        return
    non_gated = len(state.failed_nodeids - state.gated_failures)
    gates_passed = bool(data['session']['gates_passed'])
    status = decide_exit_status(
        int(session.exitstatus), non_gated, gates_passed, len(state.harness_errors), complete or interrupted
    )
    session.exitstatus = status
