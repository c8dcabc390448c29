"""The run's verdict and exit status, decided by one pure function from the report (and, in a pytest session, what
only pytest knows). The plugin, the terminal and markdown summaries, the GitHub annotations and `evaltrace merge`
all use it, so they never disagree.

The rule, in order:

1. pytest's own statuses other than 0, 1 and 2 (internal error 3, usage error 4, no tests 5) are kept;
2. 1 `failed`: pytest stopped the run after a failure, on request (`-x`, `--maxfail`): pytest's convention, and the
   same serially and under xdist (where pytest itself says 2); the report is incomplete, the cases left out are
   listed as not run;
3. 2 `interrupted`: pytest was interrupted (Ctrl-C, SIGTERM);
4. 7 `incomplete`: cases expected but never run, an interrupted shard, an incomplete merge;
5. 1 `failed`: a test that is not an eval case failed, an item could not be set up (a missing fixture), or an eval
   case failed outside any gate (a repeated case counts once, by the k-of-n rule);
6. 6 `gate failed`: a gate failed;
7. 7 `error`: evaltrace itself could not do its job (for example, could not write its report);
8. 0 `passed`: every case passed or is within its gate; or no eval case ran (every one selected was skipped, or a
   shard got none), which the reason says, so that it does not read as a check that passed.

A failed gate is also a failed pytest report of its own (`gate_failures`), so that pytest's last line and JUnit
count it: whenever the verdict is `failed` or `gate failed` on a complete report.

A gate with no threshold (`Gate()`, an empty `[tool.evaltrace.gate]`) is no gate: failing cases under it fail the
run as they would without it, since nothing else could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..judge.exit import EXIT_FAILED, EXIT_GATE_FAILED, EXIT_HARNESS_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK
from ..judge.gates import gate_from_mapping
from ..names import SESSION_GATE_NODE
from ..results.case import CaseResult
from .final import Report, RunVerdict, as_report

__all__ = (
    'EXIT_GATE_FAILED',
    'EXIT_HARNESS_ERROR',
    'SESSION_GATE_NODE',
    'SETUP_ERROR',
    'STOPPED_REASON',
    'GateFailure',
    'RunVerdict',
    'decide',
    'failing_cases',
    'gate_failures',
    'is_gate',
    'report_verdict',
    'ungated_failures',
)

SETUP_ERROR = 'SetupError'
"""`error.type` of a case whose pytest item could not be set up (a missing fixture): it fails the run whatever
the gate, since the case never ran."""

_PYTEST_OK = (EXIT_OK, EXIT_FAILED)
STOPPED_REASON = 'the run was stopped by -x/--maxfail after a failure'


def is_gate(spec: Mapping[str, Any] | None) -> bool:
    """Whether a gate (as the report records it, `gate_spec`) checks anything: an empty one is no gate."""
    if not spec:
        return False
    try:
        return not gate_from_mapping(spec).is_empty()
    except (ValueError, TypeError):
        return True  # a gate the report could not have held: count it, rather than let failures through


def failing_cases(report: Report | Mapping[str, Any]) -> list[CaseResult]:
    """Failing case runs, leaving out the runs of repeated cases that pass by the k-of-n rule."""
    run = as_report(report)
    passing_flaky = {
        f['case'] for s in run.suites for f in s.stats.flaky if f['passed'] >= (s.info.pass_k or s.info.repeat or 1)
    }
    return [c for c in run.cases if c.status in ('failed', 'error') and c.case_key not in passing_flaky]


def ungated_failures(report: Report | Mapping[str, Any]) -> list[CaseResult]:
    """Failing cases that fail the run by themselves: outside any gate, or never set up."""
    run = as_report(report)
    session_gated = run.session.gate is not None and not run.session.gate.is_empty()
    gated = {s.suite for s in run.suites if s.info.gate is not None and not s.info.gate.is_empty()}
    return [c for c in failing_cases(run) if _never_set_up(c) or not (session_gated or c.suite in gated)]


@dataclass(frozen=True)
class GateFailure:
    """A failed gate as pytest reports it: a failed test of its own."""

    nodeid: str
    """`<suite run>::gate[<gate>]`, or `evaltrace::gate[<gate>]` for the session gate."""
    reason: str
    """One line: `gate min_pass_rate failed: actual 0.75, threshold 0.9`."""


def gate_failures(report: Report | Mapping[str, Any], verdict: RunVerdict) -> list[GateFailure]:
    """The failed gates to report as failed pytest tests (pure): every failed gate of a complete report whose
    verdict is `failed` or `gate failed`. A passing gate is none; an incomplete or interrupted run's gates judged
    only the cases that ran, and its verdict already says why it failed."""
    run = as_report(report)
    if verdict.word not in ('failed', 'gate failed') or not run.complete:
        return []
    failures: list[GateFailure] = []
    for node, gate in run.gates:
        if gate.passed:
            continue
        detail = f' {gate.detail}' if gate.detail else ''
        reason = f'gate {gate.name} failed: actual {gate.actual}, threshold {gate.threshold}{detail}'
        failures.append(GateFailure(f'{node}::gate[{gate.name}]', reason))
    return failures


def _never_set_up(case: CaseResult) -> bool:
    return case.error is not None and case.error.get('type') == SETUP_ERROR


def decide(
    report: Report | Mapping[str, Any],
    *,
    pytest_status: int = 0,
    harness_errors: int = 0,
    stopped: bool = False,
) -> RunVerdict:
    """The verdict of a run (pure).

    Args:
        report: The run's report (a session's, a shard's, or a merge's).
        pytest_status: pytest's exit status, in a pytest session.
        harness_errors: Problems evaltrace had doing its job (a report it could not write, ...).
        stopped: pytest stopped the run after a failure, on request (`-x`, `--maxfail`; under xdist pytest's status
            is then 2): the cases it left out are the user's choice, so the report is incomplete but the verdict is
            the failure's.
    """
    run = as_report(report)
    if pytest_status not in (*_PYTEST_OK, EXIT_INTERRUPTED) or (pytest_status == EXIT_INTERRUPTED and not stopped):
        word = 'interrupted' if pytest_status == EXIT_INTERRUPTED else f'pytest status {pytest_status}'
        return RunVerdict(word, pytest_status, f'pytest ended with status {pytest_status}')
    other_failures = len(run.other_failures)  # plain tests that failed: the report lists them (and a merge keeps them)
    outside: list[CaseResult] = []
    never_set_up: list[CaseResult] = []  # gated or not: nothing ran
    for case in ungated_failures(run):
        (never_set_up if _never_set_up(case) else outside).append(case)
    failed: list[str] = []
    for runs, what in ((outside, 'failed outside any gate'), (never_set_up, 'could not be set up')):
        if runs:
            n_cases = len({c.case_key for c in runs})  # a repeated case is one case, however many runs failed
            failed.append(f'{n_cases} case(s) {what}' + (f' ({len(runs)} runs)' if n_cases != len(runs) else ''))
    failed += [f'{other_failures} other test(s) failed'] if other_failures else []
    if stopped:
        missing = run.missing if not run.complete else []
        details = ', '.join(failed + ([f'{len(missing)} case(s) not run'] if missing else []))
        return RunVerdict('failed', EXIT_FAILED, f'{STOPPED_REASON}: {details}' if details else STOPPED_REASON)
    if not run.complete:
        reason = '; '.join(run.merge_problems) or 'the run was interrupted or some expected cases did not run'
        return RunVerdict('incomplete', EXIT_INCOMPLETE, reason)
    if failed:
        return RunVerdict('failed', EXIT_FAILED, ', '.join(failed))
    failing = [g for _, g in run.gates if not g.passed]
    # A name that failed in several suite runs says which, so that the line does not repeat it bare.
    repeated = {g.name for g in failing if sum(o.name == g.name for o in failing) > 1}
    failed_gates = [f'{g.name} ({g.scope})' if g.name in repeated else g.name for g in failing]
    if failed_gates:
        return RunVerdict('gate failed', EXIT_GATE_FAILED, f'gate(s) failed: {", ".join(failed_gates)}')
    if harness_errors:
        return RunVerdict('error', EXIT_HARNESS_ERROR, f'{harness_errors} evaltrace error(s)')
    if not run.cases:  # "every case passed" would claim a check that never happened
        why = 'this shard got none' if run.shard_count > 1 else 'every one selected was skipped'
        return RunVerdict('passed', EXIT_OK, f'no eval case ran ({why})')
    return RunVerdict('passed', EXIT_OK, 'every case passed or is within its gate')


def report_verdict(report: Report | Mapping[str, Any]) -> RunVerdict:
    """The verdict a report carries (as the session decided it, with what only pytest knew), else decided from
    the report alone (a merge, an older report)."""
    run = as_report(report)
    return run.verdict if run.verdict is not None else decide(run)
