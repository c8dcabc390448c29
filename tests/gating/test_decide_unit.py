"""The one rule of a run's verdict and exit status (pure), and the outputs that must agree with it."""

from __future__ import annotations

from typing import Any

import pytest

from evaltrace.judge.gates import Gate
from evaltrace.report.decide import STOPPED_REASON, GateFailure, decide, gate_failures, is_gate, report_verdict
from evaltrace.views.ci import markdown_summary, verdict
from evaltrace.views.summary import summary_lines
from tests.support.reports import case, report

PASSING = [case('a'), case('b')]
ONE_FAILING = [case('a'), case('b', 'failed')]


@pytest.mark.parametrize(
    ('data', 'kwargs', 'word', 'status'),
    [
        (report(PASSING), {}, 'passed', 0),
        (report(ONE_FAILING), {}, 'failed', 1),
        (report(ONE_FAILING, gate=Gate(max_errors=0)), {}, 'passed', 0),  # under a passing gate
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {}, 'gate failed', 6),
        (report([case('a', 'error')], gate=Gate(max_errors=0)), {}, 'gate failed', 6),
        (report(ONE_FAILING, gate=Gate()), {}, 'failed', 1),  # an empty gate is no gate
        (report(ONE_FAILING, session_gate=Gate()), {}, 'failed', 1),
        (report(ONE_FAILING, session_gate=Gate(max_errors=0)), {}, 'passed', 0),
        (report(PASSING), {'other_failures': 1}, 'failed', 1),  # a plain test failed
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {'other_failures': 1}, 'failed', 1),  # 1 outranks 6
        (report(PASSING), {'harness_errors': 1}, 'error', 7),
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {'harness_errors': 1}, 'gate failed', 6),
        (report(PASSING, complete=False), {}, 'incomplete', 7),  # a run missing cases never passes
        (report(ONE_FAILING, complete=False), {'stopped': True}, 'failed', 1),  # -x: the user's choice
        (report(ONE_FAILING, complete=False), {'stopped': True, 'pytest_status': 2}, 'failed', 1),  # -x under xdist
        (report(PASSING, complete=False), {'stopped': True, 'other_failures': 1}, 'failed', 1),  # a plain test
        (report(PASSING, complete=False), {'stopped': True, 'pytest_status': 3}, 'pytest status 3', 3),
        (report(PASSING, complete=False), {'pytest_status': 2}, 'interrupted', 2),  # pytest's statuses kept
        (report(PASSING), {'pytest_status': 5}, 'pytest status 5', 5),
    ],
)
def test_the_one_rule(data: dict[str, Any], kwargs: dict[str, Any], word: str, status: int) -> None:
    kwargs = dict(kwargs)
    if others := kwargs.pop('other_failures', 0):  # plain tests that failed: the report lists them
        data = {**data, 'other_failures': [f'tests/test_plain.py::test_{i}' for i in range(others)]}
    result = decide(data, **kwargs)
    assert (result.word, result.exit_status) == (word, status)
    assert result.reason
    if not kwargs:  # what the report alone holds: the word the CI outputs read from it is the same
        assert verdict(data) == word


@pytest.mark.parametrize('gate', [Gate(), Gate(max_errors=0)])
def test_every_output_says_the_same(gate: Gate) -> None:
    data = report(ONE_FAILING, gate=gate)
    expected = decide(data)
    data['verdict'] = expected.to_dict()
    assert report_verdict(data) == expected
    assert verdict(data) == expected.word
    assert markdown_summary(data).startswith(f'## {"❌" if expected.exit_status else "✅"} evaltrace: {expected.word}')
    assert summary_lines(data)[-1].startswith(f'verdict: {expected.word} (exit status {expected.exit_status})')


def test_a_stored_verdict_is_the_reports_word() -> None:
    """The session's verdict knows what the report cannot (a plain test that failed): outputs read it."""
    data = report(PASSING)
    data['verdict'] = decide({**data, 'other_failures': ['tests/test_plain.py::test_plain']}).to_dict()
    assert verdict(data) == 'failed'
    assert markdown_summary(data).startswith('## ❌ evaltrace: failed')


def test_is_gate() -> None:
    assert not is_gate(None)
    assert not is_gate({})
    assert not is_gate({'no_assertion_regressions': False})  # how an empty Gate() is recorded
    assert is_gate({'max_errors': 0})


def test_a_run_stopped_by_maxfail_says_so() -> None:
    data = report(
        ONE_FAILING, complete=False, expected=[f'{c.nodeid}' for c in ONE_FAILING] + ['evals/test_x.py::test_x[c]']
    )
    result = decide(data, pytest_status=2, stopped=True)
    assert result.reason == f'{STOPPED_REASON}: 1 case(s) failed outside any gate, 1 case(s) not run'
    assert decide(report(PASSING, complete=False), stopped=True).reason == STOPPED_REASON


def test_failed_gates_are_reported_as_failed_tests() -> None:
    data = report(ONE_FAILING, gate=Gate(min_pass_rate=0.9), session_gate=Gate(min_pass_rate=0.75))
    assert gate_failures(data, decide(data)) == [
        GateFailure(
            'evals/test_x.py::test_x::gate[min_pass_rate]', 'gate min_pass_rate failed: actual 0.5, threshold 0.9'
        ),
        GateFailure('evaltrace::gate[min_pass_rate]', 'gate min_pass_rate failed: actual 0.5, threshold 0.75'),
    ]
    passing = report(ONE_FAILING, gate=Gate(min_pass_rate=0.5))
    assert gate_failures(passing, decide(passing)) == []  # a passing gate reports nothing
    incomplete = report(ONE_FAILING, gate=Gate(min_pass_rate=0.9), complete=False)
    assert gate_failures(incomplete, decide(incomplete)) == []  # judged on the cases that ran: the verdict says why


def test_the_verdict_counts_failing_cases_not_their_repeats() -> None:
    runs = [case('a', 'failed', repeat=i, repeats=3) for i in (1, 2, 3)] + [case('b', 'failed')]
    assert decide(report(runs, repeat=3)).reason == '2 case(s) failed outside any gate (4 runs)'
    assert decide(report(ONE_FAILING)).reason == '1 case(s) failed outside any gate'


def test_a_gate_that_failed_in_several_suite_runs_is_named_with_each() -> None:
    cases = [
        case('a', 'failed', suite='evals/test_x.py::test_x[m1]'),
        case('a', 'failed', suite='evals/test_x.py::test_x[m2]'),
    ]
    result = decide(report(cases, gate=Gate(min_pass_rate=0.9)))
    assert result.reason == (
        'gate(s) failed: min_pass_rate (evals/test_x.py::test_x[m1]), min_pass_rate (evals/test_x.py::test_x[m2])'
    )


def test_a_case_that_could_not_be_set_up_is_named_so_not_as_outside_a_gate() -> None:
    from evaltrace.report.decide import SETUP_ERROR

    broken = case('b', 'error')
    broken.error = {'type': SETUP_ERROR, 'message': 'fixture failed', 'traceback': ''}
    result = decide(report([case('a'), broken], gate=Gate(min_pass_rate=0.1)))
    assert (result.word, result.reason) == ('failed', '1 case(s) could not be set up')
