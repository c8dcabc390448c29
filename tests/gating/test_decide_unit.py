"""The one rule of a run's verdict and exit status (pure), and the outputs that must agree with it."""

from __future__ import annotations

from typing import Any

import pytest

from evaltrace._ci import markdown_summary, verdict
from evaltrace._decide import decide, is_gate, report_verdict
from evaltrace._gates import Gate
from evaltrace._summary import summary_lines
from tests.gating._reports import case, report

PASSING = [case('a'), case('b')]
ONE_FAILING = [case('a'), case('b', 'failed')]


@pytest.mark.parametrize(
    ('data', 'kwargs', 'word', 'status'),
    [
        (report(PASSING), {}, 'passed', 0),
        (report(ONE_FAILING), {}, 'failed', 1),
        (report(ONE_FAILING, gate=Gate(max_errors=0)), {}, 'passed', 0),  # under a passing gate
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {}, 'gate failed', 6),
        (report(ONE_FAILING, gate=Gate()), {}, 'failed', 1),  # an empty gate is no gate
        (report(ONE_FAILING, session_gate=Gate()), {}, 'failed', 1),
        (report(ONE_FAILING, session_gate=Gate(max_errors=0)), {}, 'passed', 0),
        (report(PASSING), {'other_failures': 1}, 'failed', 1),  # a plain test failed
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {'other_failures': 1}, 'failed', 1),  # 1 outranks 6
        (report(PASSING), {'harness_errors': 1}, 'error', 7),
        (report(ONE_FAILING, gate=Gate(min_pass_rate=0.9)), {'harness_errors': 1}, 'gate failed', 6),
        (report(PASSING, complete=False), {}, 'incomplete', 7),  # a run missing cases never passes
        (report(ONE_FAILING, complete=False), {'stopped': True}, 'failed', 1),  # -x: the user's choice
        (report(PASSING, complete=False), {'pytest_status': 2}, 'interrupted', 2),  # pytest's statuses kept
        (report(PASSING), {'pytest_status': 5}, 'pytest status 5', 5),
    ],
)
def test_the_one_rule(data: dict[str, Any], kwargs: dict[str, Any], word: str, status: int) -> None:
    result = decide(data, **kwargs)
    assert (result.word, result.exit_status) == (word, status)
    assert result.reason


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
    data['verdict'] = decide(data, other_failures=1).to_dict()
    assert verdict(data) == 'failed'
    assert markdown_summary(data).startswith('## ❌ evaltrace: failed')


def test_is_gate() -> None:
    assert not is_gate(None)
    assert not is_gate({})
    assert not is_gate({'no_assertion_regressions': False})  # how an empty Gate() is recorded
    assert is_gate({'max_errors': 0})
