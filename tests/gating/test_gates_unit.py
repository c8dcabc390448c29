"""Gate arithmetic, k-of-n folding, the Wilson bound and the exit status, as pure functions."""

from __future__ import annotations

import pytest

from evaltrace.judge.gates import (
    Gate,
    compute_stats,
    evaluate_gate,
    gate_from_mapping,
    logical_cases,
    wilson_lower_bound,
)
from evaltrace.session.end import passing_by_k_of_n
from tests.support.reports import case

CASES = [
    case('a', ok=True, score=0.9, cost=0.01, tokens=100, duration=0.1),
    case('b', ok=True, score=0.7, cost=0.03, tokens=300, duration=0.2),
    case('c', 'failed', ok=False, score=0.2, cost=0.02, tokens=200, duration=1.5),
    case('d', 'error', cost=0.0, duration=0.05),
]

# (gate, name of its result, a threshold that holds, a threshold that does not, the actual value)
GATES = [
    ('min_pass_rate', 'min_pass_rate', 0.5, 0.51, 0.5),
    ('min_assertion_pass_rate', 'min_assertion_pass_rate', 0.66, 0.67, 0.666667),
    ('min_evaluator_pass_rate', 'min_evaluator_pass_rate[Equals]', {'Equals': 0.6}, {'Equals': 0.7}, 0.666667),
    ('min_score_avg', 'min_score_avg[quality]', {'quality': 0.6}, {'quality': 0.61}, 0.6),
    ('max_errors', 'max_errors', 1, 0, 1),
    ('max_cost_usd', 'max_cost_usd', 0.06, 0.059, 0.06),
    ('max_cost_per_case_usd', 'max_cost_per_case_usd', 0.03, 0.029, 0.03),
    ('max_total_tokens', 'max_total_tokens', 600, 599, 600),
    ('max_p95_duration_s', 'max_p95_duration_s', 1.5, 1.4, 1.5),
    ('min_pass_rate_lower_bound', 'min_pass_rate_lower_bound', 0.15, 0.16, 0.15004),
]


@pytest.mark.parametrize(('field', 'name', 'holds', 'breaks', 'actual'), GATES, ids=[g[0] for g in GATES])
def test_each_gate_kind_passes_at_its_threshold_and_fails_past_it(
    field: str, name: str, holds: object, breaks: object, actual: float
) -> None:
    stats = compute_stats(CASES)
    [ok] = evaluate_gate(Gate(**{field: holds}), stats, 'suite')  # type: ignore[arg-type]
    [bad] = evaluate_gate(Gate(**{field: breaks}), stats, 'suite')  # type: ignore[arg-type]
    assert (ok.name, ok.passed, bad.passed) == (name, True, False)
    assert ok.actual == pytest.approx(actual, abs=1e-5)
    assert bad.threshold == (breaks if not isinstance(breaks, dict) else next(iter(breaks.values())))


def test_one_gate_checks_each_of_its_thresholds() -> None:
    cases = [
        case('a', score=0.9, cost=0.01, tokens=110),
        case('b', 'failed', score=0.5, cost=0.03, tokens=110),
        case('c', 'error', score=0.1, tokens=110),
    ]
    gate = Gate(
        min_pass_rate=0.3, min_score_avg={'quality': 0.6}, max_errors=0, max_cost_usd=0.05, max_total_tokens=330
    )
    results = {g.name: g for g in evaluate_gate(gate, compute_stats(cases), 'suite')}
    assert results['min_pass_rate'].passed and results['min_pass_rate'].actual == pytest.approx(1 / 3, abs=1e-6)
    assert not results['min_score_avg[quality]'].passed
    assert not results['max_errors'].passed
    assert results['max_cost_usd'].passed
    assert results['max_total_tokens'].passed and results['max_total_tokens'].actual == 330


def test_a_gate_on_a_missing_score_fails() -> None:
    [result] = evaluate_gate(Gate(min_score_avg={'nope': 0.1}), compute_stats(CASES), 'suite')
    assert (result.actual, result.passed) == (None, False)


@pytest.mark.parametrize(
    ('table', 'message'),
    [
        ({'min_pass_rate': 1.5}, 'min_pass_rate is a fraction between 0 and 1, got 1.5'),
        ({'max_errors': -1}, 'max_errors must be >= 0, got -1'),
        ({'max_errors': 1.5}, 'max_errors must be a whole number, got 1.5'),
        ({'max_errors': 2.0}, 'max_errors must be a whole number, got 2.0'),
        ({'max_total_tokens': 1000.5}, 'max_total_tokens must be a whole number, got 1000.5'),
        ({'max_total_tokens': True}, 'max_total_tokens must be a whole number, got True'),
        ({'max_cost_usd': 'cheap'}, "max_cost_usd must be a number, got 'cheap'"),
        ({'min_score_avg': {'q': 'high'}}, "min_score_avg[q] must be a number, got 'high'"),
        ({'no_assertion_regressions': 'yes'}, "no_assertion_regressions must be true or false, got 'yes'"),
        ({'min_pass': 0.5}, 'unknown gate key(s) min_pass'),
    ],
)
def test_bad_gate_values_are_rejected_with_the_key_named(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        gate_from_mapping(table)
    assert str(excinfo.value).startswith(message)


def test_zero_thresholds_are_real_thresholds() -> None:
    assert not Gate(max_errors=0).is_empty()
    assert Gate().is_empty()
    assert Gate(no_assertion_regressions=False).is_empty()
    assert Gate(max_score_drop=0.0).has_regression_gates


def test_wilson_lower_bound_is_strict_for_small_samples() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(3, 3) == pytest.approx(0.4385, abs=1e-3)
    assert wilson_lower_bound(10, 10) == pytest.approx(0.7225, abs=1e-4)
    assert wilson_lower_bound(100, 100) == pytest.approx(0.963, abs=1e-3)
    assert wilson_lower_bound(300, 300) == pytest.approx(0.9874, abs=1e-3)
    # A perfect small sample does not clear a gate a large one does.
    assert wilson_lower_bound(3, 3) < 0.9 < wilson_lower_bound(100, 100)


def test_k_of_n_folds_repeats_and_reports_flaky_cases_with_their_ratio() -> None:
    runs = [
        case('a', 'passed', repeat=1, repeats=3),
        case('a', 'failed', repeat=2, repeats=3),
        case('a', 'passed', repeat=3, repeats=3),
        case('b', 'failed', repeat=1, repeats=3),
        case('b', 'failed', repeat=2, repeats=3),
        case('b', 'passed', repeat=3, repeats=3),
    ]
    suite = runs[0].suite
    folded = {lc.key.split('[')[-1].rstrip(']'): lc for lc in logical_cases(runs, {suite: 2})}
    assert (folded['a'].passed, folded['b'].passed) == (True, False)
    assert not any(lc.passed for lc in logical_cases(runs))  # by default every repeat must pass
    assert compute_stats(runs).pass_rate == 0.0
    stats = compute_stats(runs, {suite: 2})
    assert (stats.logical_cases, stats.logical_passed, stats.pass_rate) == (2, 1, 0.5)
    assert sorted(stats.flaky, key=lambda f: str(f['case'])) == [
        {'case': f'{suite}[a]', 'passed': 2, 'runs': 3, 'pass_ratio': 0.6667},
        {'case': f'{suite}[b]', 'passed': 1, 'runs': 3, 'pass_ratio': 0.3333},
    ]
    assert passing_by_k_of_n(runs, {suite: 2}) == {r.nodeid for r in runs[:3]}
    assert passing_by_k_of_n(runs, {}) == set()


def test_a_gate_exactly_at_its_threshold_holds_despite_float_sums() -> None:
    """0.7, 0.8 and 0.9 average to 0.7999999999999999 in floats; three costs of 1.995e-05 sum past 5.985e-05."""
    scores = [case(name, score=s) for name, s in (('a', 0.7), ('b', 0.8), ('c', 0.9))]
    [at] = evaluate_gate(Gate(min_score_avg={'quality': 0.8}), compute_stats(scores), 'suite')
    assert at.passed, at
    costs = [case(name, cost=1.995e-05) for name in 'abc']
    [budget] = evaluate_gate(Gate(max_cost_usd=5.985e-05), compute_stats(costs), 'suite')
    assert budget.passed, budget
    [past] = evaluate_gate(Gate(max_cost_usd=5.98e-05), compute_stats(costs), 'suite')
    assert not past.passed


def test_a_request_without_a_price_is_counted_unpriced_unless_the_model_is_offline() -> None:
    from evaltrace.results.usage import usage_of_span

    real = {'gen_ai.usage.input_tokens': 10, 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'acme-9'}
    usage = usage_of_span(real)
    assert usage is not None
    assert (usage.unpriced_requests, usage.unpriced_models, usage.cost_usd) == (1, frozenset({'acme-9'}), 0.0)
    priced = usage_of_span({**real, 'operation.cost': 0.5})
    offline = usage_of_span({**real, 'gen_ai.provider.name': 'function'})
    no_tokens = usage_of_span({**real, 'gen_ai.usage.input_tokens': 0})
    for other in (priced, offline, no_tokens):
        assert other is not None
        assert other.unpriced_requests == 0
        assert 'unpriced_requests' not in other.to_dict()
