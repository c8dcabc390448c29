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
8. 0 `passed`.

A failed gate is also a failed pytest report of its own (`gate_failures`), so that pytest's last line and JUnit
count it: whenever the verdict is `failed` or `gate failed` on a complete report.

A gate with no threshold (`Gate()`, an empty `[tool.evaltrace.gate]`) is no gate: failing cases under it fail the
run as they would without it, since nothing else could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ._gates import gate_from_mapping

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

EXIT_GATE_FAILED = 6
"""Exit status when every failing case is under a gate and a gate failed."""
EXIT_HARNESS_ERROR = 7
"""Exit status when evaltrace could not do its job, or the run is incomplete."""
SETUP_ERROR = 'SetupError'
"""`error.type` of a case whose pytest item could not be set up (a missing fixture): it fails the run whatever
the gate, since the case never ran."""

_PYTEST_OK = (0, 1)
_INTERRUPTED = 2
STOPPED_REASON = 'the run was stopped by -x/--maxfail after a failure'
SESSION_GATE_NODE = 'evaltrace'
"""The pytest node id under which a failed session gate is reported (a suite's gate is under its suite)."""


@dataclass(frozen=True)
class RunVerdict:
    """The verdict of a run: one word, the exit status, and why."""

    word: str
    """`passed`, `failed`, `gate failed`, `incomplete`, `error`, or pytest's `interrupted` / `pytest status N`."""
    exit_status: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {'word': self.word, 'exit_status': self.exit_status, 'reason': self.reason}


def is_gate(spec: Mapping[str, Any] | None) -> bool:
    """Whether a gate (as the report records it, `gate_spec`) checks anything: an empty one is no gate."""
    if not spec:
        return False
    try:
        return not gate_from_mapping(spec).is_empty()
    except (ValueError, TypeError):
        return True  # a gate the report could not have held: count it, rather than let failures through


def failing_cases(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Failing case runs, leaving out the runs of repeated cases that pass by the k-of-n rule."""
    passing_flaky = {
        f['case']
        for s in report['suites']
        for f in s['stats']['flaky']
        if f['passed'] >= (s.get('pass_k') or s.get('repeat') or 1)
    }
    return [
        c
        for c in report['cases']
        if c['status'] in ('failed', 'error') and f'{c["suite"]}[{c["case"]}]' not in passing_flaky
    ]


def ungated_failures(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Failing cases that fail the run by themselves: outside any gate, or never set up."""
    session_gated = is_gate(report['session'].get('gate_spec'))
    gated = {s['suite'] for s in report['suites'] if is_gate(s.get('gate_spec'))}
    return [c for c in failing_cases(report) if _never_set_up(c) or not (session_gated or c['suite'] in gated)]


def _failed_gates(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each failed gate with the node id it belongs to: its suite run's, or `SESSION_GATE_NODE`."""
    found = [(str(s['suite']), g) for s in report['suites'] for g in s['gates'] if not g['passed']]
    return found + [(SESSION_GATE_NODE, g) for g in report['session']['gates'] if not g['passed']]


@dataclass(frozen=True)
class GateFailure:
    """A failed gate as pytest reports it: a failed test of its own."""

    nodeid: str
    """`<suite run>::gate[<gate>]`, or `evaltrace::gate[<gate>]` for the session gate."""
    reason: str
    """One line: `gate min_pass_rate failed: actual 0.75, threshold 0.9`."""


def gate_failures(report: Mapping[str, Any], verdict: RunVerdict) -> list[GateFailure]:
    """The failed gates to report as failed pytest tests (pure): every failed gate of a complete report whose
    verdict is `failed` or `gate failed`. A passing gate is none; an incomplete or interrupted run's gates judged
    only the cases that ran, and its verdict already says why it failed."""
    if verdict.word not in ('failed', 'gate failed') or not report.get('complete', True):
        return []
    failures: list[GateFailure] = []
    for node, gate in _failed_gates(report):
        detail = f' {gate["detail"]}' if gate.get('detail') else ''
        reason = f'gate {gate["name"]} failed: actual {gate["actual"]}, threshold {gate["threshold"]}{detail}'
        failures.append(GateFailure(f'{node}::gate[{gate["name"]}]', reason))
    return failures


def _never_set_up(case: Mapping[str, Any]) -> bool:
    error: Any = case.get('error')
    return isinstance(error, dict) and cast(dict[str, Any], error).get('type') == SETUP_ERROR


def decide(
    report: Mapping[str, Any],
    *,
    pytest_status: int = 0,
    other_failures: int = 0,
    harness_errors: int = 0,
    stopped: bool = False,
) -> RunVerdict:
    """The verdict of a run (pure).

    Args:
        report: The run's report (`report.json`, a shard's, or a merge's).
        pytest_status: pytest's exit status, in a pytest session.
        other_failures: Failed pytest items that are not failing eval cases of the report (plain tests).
        harness_errors: Problems evaltrace had doing its job (a report it could not write, ...).
        stopped: pytest stopped the run after a failure, on request (`-x`, `--maxfail`; under xdist pytest's status
            is then 2): the cases it left out are the user's choice, so the report is incomplete but the verdict is
            the failure's.
    """
    if pytest_status not in (*_PYTEST_OK, _INTERRUPTED) or (pytest_status == _INTERRUPTED and not stopped):
        word = 'interrupted' if pytest_status == _INTERRUPTED else f'pytest status {pytest_status}'
        return RunVerdict(word, pytest_status, f'pytest ended with status {pytest_status}')
    ungated = ungated_failures(report)
    failed = [f'{len(ungated)} case(s) failed outside any gate'] if ungated else []
    failed += [f'{other_failures} other test(s) failed'] if other_failures else []
    if stopped:
        missing: list[str] = list(report.get('missing') or [])
        details = ', '.join(failed + ([f'{len(missing)} case(s) not run'] if missing else []))
        return RunVerdict('failed', 1, f'{STOPPED_REASON}: {details}' if details else STOPPED_REASON)
    if not report.get('complete', True):
        merge: Mapping[str, Any] = report.get('merge') or {}
        problems: list[str] = list(merge.get('problems') or [])
        reason = '; '.join(problems) or 'the run was interrupted or some expected cases did not run'
        return RunVerdict('incomplete', EXIT_HARNESS_ERROR, reason)
    if failed:
        return RunVerdict('failed', 1, ', '.join(failed))
    failed_gates = [g['name'] for _, g in _failed_gates(report)]
    if failed_gates or not report['session'].get('gates_passed', True):
        return RunVerdict('gate failed', EXIT_GATE_FAILED, f'gate(s) failed: {", ".join(failed_gates)}')
    if harness_errors:
        return RunVerdict('error', EXIT_HARNESS_ERROR, f'{harness_errors} evaltrace error(s)')
    return RunVerdict('passed', 0, 'every case passed or is within its gate')


def report_verdict(report: Mapping[str, Any]) -> RunVerdict:
    """The verdict a report carries (as the session decided it, with what only pytest knew), else decided from
    the report alone (a merge, an older report)."""
    stored: Any = report.get('verdict')
    if isinstance(stored, dict):
        data = cast(dict[str, Any], stored)
        return RunVerdict(str(data['word']), int(data['exit_status']), str(data.get('reason', '')))
    return decide(report)
