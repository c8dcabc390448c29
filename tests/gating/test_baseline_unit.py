"""Baselines: what they keep, and what a later run's comparison and regression gates say (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaltrace.judge.gates import Gate
from evaltrace.report.baseline import BaselineError, apply_baseline, load_baseline, make_baseline, save_baseline
from tests.support.reports import SUITE, case, report

BASE_CASES = [
    case('stays', ok=True, score=0.9, cost=0.010),
    case('breaks', ok=True, score=0.8, cost=0.010),
    case('heals', 'failed', ok=False, score=0.2, cost=0.010),
    case('edited', ok=True, score=0.9, cost=0.010),
    case('dropped', ok=True, score=0.9, cost=0.010),
]


def _now_cases(cost: float = 0.010) -> list:  # type: ignore[type-arg]
    return [
        case('stays', ok=True, score=0.9, cost=cost),
        case('breaks', 'failed', ok=False, score=0.4, cost=cost),
        case('heals', ok=True, score=0.9, cost=cost),
        case('edited', 'failed', ok=False, score=0.0, cost=cost, inputs_hash='new-inputs'),
        case('fresh', ok=True, score=1.0, cost=cost),
    ]


def test_a_baseline_is_compact_and_committable(tmp_path: Path) -> None:
    path = tmp_path / 'evals' / 'baseline.json'
    save_baseline(report(BASE_CASES), path)
    text = path.read_text()
    data = json.loads(text)
    assert data['kind'] == 'baseline'
    entry = data['suites'][SUITE]['cases']['breaks']
    assert entry == {
        'status': 'passed',
        'assertions': {'Equals': True},
        'scores': {'quality': 0.8},
        'cost_usd': 0.01,
        'inputs_hash': 'hash-breaks',
    }
    stats = data['suites'][SUITE]['stats']
    assert stats['pass_rate'] == 0.8
    assert stats['score_averages'] == {'quality': 0.74}
    assert stats['cost_usd'] == pytest.approx(0.05)
    assert 'trace_id' not in text
    assert 'output' not in text
    assert load_baseline(path) == data


def test_only_complete_unsharded_reports_make_baselines(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match='incomplete'):
        make_baseline(report(BASE_CASES, complete=False))
    with pytest.raises(BaselineError, match='merge the shards first'):
        make_baseline(report(BASE_CASES, shard=(1, 2)))
    assert load_baseline(tmp_path / 'absent.json') is None
    (tmp_path / 'bad.json').write_text('{"kind": "report"}')
    with pytest.raises(BaselineError, match=r'bad\.json: not an evaltrace baseline'):
        load_baseline(tmp_path / 'bad.json')


def test_the_comparison_lists_failing_fixed_added_removed_and_changed_cases() -> None:
    baseline = make_baseline(report(BASE_CASES))
    data = apply_baseline(report(_now_cases()), baseline, baseline_path='evals/baseline.json', session_gate=None)
    cmp = data['baseline']
    key = f'{SUITE}[{{}}]'.format
    s = cmp['session']
    assert s['newly_failing'] == [key('breaks')]
    assert s['newly_fixed'] == [key('heals')]
    assert s['added'] == [key('fresh')]
    assert s['removed'] == [key('dropped')]
    assert s['changed'] == [key('edited')]  # inputs differ: listed, not compared
    assert s['assertion_regressions'] == [{'case': key('breaks'), 'assertion': 'Equals'}]
    [suite] = cmp['suites']
    assert suite['compared'] == 3  # stays, breaks, heals
    assert suite['evaluator_pass_rates']['Equals'] == {'baseline': 0.666667, 'current': 0.666667, 'delta': 0.0}
    assert suite['score_averages']['quality'] == {'baseline': 0.633333, 'current': 0.733333, 'delta': 0.1}
    assert suite['cost_usd']['delta_pct'] == 0.0
    assert suite['total_cost_usd']['baseline'] == pytest.approx(0.05)
    assert data['session']['gates'] == []  # no regression gate asked for


def test_regression_gates_fail_on_a_lost_assertion_a_score_drop_and_cost_growth() -> None:
    baseline = make_baseline(report(BASE_CASES))
    gate = Gate(no_assertion_regressions=True, max_score_drop=0.05, max_cost_increase_pct=20)
    cheap = [c for c in _now_cases(cost=0.011) if c.case != 'breaks' and c.case != 'heals']
    ok = apply_baseline(report(cheap, gate=gate), baseline, baseline_path='b.json', session_gate=None)
    results = {g['name']: g for g in ok['suites'][0]['gates']}
    assert {n: g['passed'] for n, g in results.items()} == {
        'no_assertion_regressions': True,
        'max_score_drop[quality]': True,
        'max_cost_increase_pct': True,
    }
    assert results['max_cost_increase_pct']['actual'] == pytest.approx(10.0)
    assert ok['session']['gates_passed']

    bad = apply_baseline(report(_now_cases(cost=0.013), gate=gate), baseline, baseline_path='b.json', session_gate=gate)
    suite_gates = {g['name']: g for g in bad['suites'][0]['gates']}
    assert suite_gates['no_assertion_regressions']['actual'] == 1
    assert not suite_gates['no_assertion_regressions']['passed']
    assert 'breaks' in suite_gates['no_assertion_regressions']['detail']
    assert suite_gates['max_cost_increase_pct']['actual'] == pytest.approx(30.0)
    assert not suite_gates['max_cost_increase_pct']['passed']
    # The session gate checks the same rules over every suite.
    assert {g['name'] for g in bad['session']['gates'] if not g['passed']} == {
        'no_assertion_regressions',
        'max_cost_increase_pct',
    }
    assert not bad['suites'][0]['passed']
    assert not bad['session']['gates_passed']


def test_a_score_drop_past_the_limit_fails() -> None:
    baseline = make_baseline(report([case('a', score=0.9), case('b', score=0.7)]))
    now = report([case('a', score=0.8), case('b', score=0.7)], gate=Gate(max_score_drop=0.04))
    [gate] = apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['suites'][0]['gates']
    assert (gate['name'], gate['actual'], gate['passed']) == ('max_score_drop[quality]', 0.05, False)


def test_an_error_loses_the_assertions_that_passed() -> None:
    baseline = make_baseline(report([case('a', ok=True)]))
    now = report([case('a', 'error')], gate=Gate(no_assertion_regressions=True))
    [gate] = apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['suites'][0]['gates']
    assert (gate['actual'], gate['passed']) == (1, False)


def test_cost_growth_from_nothing_fails_the_cost_gate() -> None:
    baseline = make_baseline(report([case('a', cost=0.0)]))
    now = report([case('a', cost=0.001)], gate=Gate(max_cost_increase_pct=50))
    [gate] = apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['suites'][0]['gates']
    assert (gate['actual'], gate['passed']) == (None, False)
    assert 'baseline cost nothing' in gate['detail']


def test_without_a_baseline_regression_gates_are_shown_as_not_checked() -> None:
    data = apply_baseline(
        report([case('a')]), None, baseline_path='evals/baseline.json', session_gate=Gate(max_score_drop=0.1)
    )
    [gate] = data['session']['gates']
    assert gate['passed']
    assert gate['actual'] is None
    assert 'not checked' in gate['detail']
    assert data['baseline'] == {'path': 'evals/baseline.json', 'missing': True}


def test_repeats_are_folded_by_k_of_n_in_the_baseline() -> None:
    runs = [case('a', 'passed', repeat=1, repeats=3, cost=0.03), case('a', 'failed', repeat=2, repeats=3, cost=0.0)]
    runs.append(case('a', 'passed', repeat=3, repeats=3, cost=0.0))
    entry = make_baseline(report(runs, pass_k=2, repeat=3))['suites'][SUITE]['cases']['a']
    assert entry['status'] == 'passed'
    assert entry['assertions'] == {'Equals': True}  # held in 2 of 3 runs, k = 2
    assert (entry['runs'], entry['passed_runs'], entry['cost_usd']) == (3, 2, 0.01)
    strict = make_baseline(report(runs, repeat=3))['suites'][SUITE]['cases']['a']
    assert strict['status'] == 'failed'
    assert strict['assertions'] == {'Equals': False}


def test_a_shard_does_not_call_the_other_shards_cases_removed() -> None:
    baseline = make_baseline(report(BASE_CASES))
    data = apply_baseline(
        report(BASE_CASES[:2], shard=(1, 2)), baseline, baseline_path='b', session_gate=None, removed_known=False
    )
    assert data['baseline']['session']['removed'] == []


def test_cost_growth_over_unpriced_requests_is_not_checked_and_fails() -> None:
    baseline = make_baseline(report([case('a', cost=0.01)]))
    unpriced = case('a', cost=0.001)
    unpriced.task_usage.unpriced_requests = 2
    unpriced.task_usage.unpriced_models = frozenset({'acme-unpriced-9000'})
    now = report([unpriced], gate=Gate(max_cost_increase_pct=50))
    [gate] = apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['suites'][0]['gates']
    assert (gate['actual'], gate['passed']) == (None, False)
    assert gate['detail'] == ('not checked: 2 requests counted as $0: genai-prices has no price for acme-unpriced-9000')


def test_a_score_lost_to_an_error_counts_as_a_drop() -> None:
    # Errored cases dropped out of the average: every case erroring gave no score at all, and the gate checked
    # nothing and let them all pass as gated; half erroring kept the average of the others (0.9 -> 0.9).
    baseline = make_baseline(report([case('a', score=0.9), case('b', score=0.7)]))
    for now, drop in (
        ([case('a', 'error'), case('b', score=0.7)], 0.45),
        ([case('a', 'error'), case('b', 'error')], 0.8),
    ):
        data = apply_baseline(
            report(now, gate=Gate(max_score_drop=0.05)), baseline, baseline_path='b.json', session_gate=None
        )
        [gate] = data['suites'][0]['gates']
        assert (gate['name'], gate['actual'], gate['passed']) == ('max_score_drop[quality]', drop, False)
    # A case that ran and no longer has the score (its evaluator was removed) is left out, not counted as 0.
    data = apply_baseline(
        report([case('a', 'failed'), case('b', score=0.7)], gate=Gate(max_score_drop=0.05)),
        baseline,
        baseline_path='b.json',
        session_gate=None,
    )
    [gate] = data['suites'][0]['gates']
    assert (gate['actual'], gate['passed']) == (0.0, True)


def test_a_score_lost_to_an_error_in_a_repeat_counts_as_0() -> None:
    # Within a case's repeats the average was over the runs that had a score: two runs errored and one at 0.9
    # averaged 0.9, and no drop showed.
    base_runs = [case('a', score=0.9, repeat=i, repeats=3) for i in (1, 2, 3)]
    baseline = make_baseline(report(base_runs, repeat=3))
    assert baseline['suites'][SUITE]['cases']['a']['scores'] == {'quality': 0.9}
    now = [case('a', 'error', repeat=1, repeats=3), case('a', 'error', repeat=2, repeats=3)]
    now.append(case('a', score=0.9, repeat=3, repeats=3))
    data = apply_baseline(
        report(now, gate=Gate(max_score_drop=0.05), repeat=3), baseline, baseline_path='b.json', session_gate=None
    )
    [gate] = data['suites'][0]['gates']
    assert (gate['name'], gate['actual'], gate['passed']) == ('max_score_drop[quality]', 0.6, False)
    # A run that ran without the score (its evaluator changed) is left out, not counted as 0.
    ran = [case('a', repeat=1, repeats=3), case('a', repeat=2, repeats=3), case('a', score=0.9, repeat=3, repeats=3)]
    assert make_baseline(report(ran, repeat=3))['suites'][SUITE]['cases']['a']['scores'] == {'quality': 0.9}


def test_a_repeated_case_that_failed_and_errored_is_errored_everywhere() -> None:
    # The baseline called it failed (a run failed), `max_errors` counted it as errored (a run errored).
    runs = [case('a', 'failed', repeat=1, repeats=2), case('a', 'error', repeat=2, repeats=2)]
    data = report(runs, repeat=2)
    assert make_baseline(data)['suites'][SUITE]['cases']['a']['status'] == 'error'
    assert data['suites'][0]['stats']['errored_cases'] == 1
    # Passing by k-of-n, it is passed everywhere, and counts as no error.
    forgiven = report([case('a', repeat=1, repeats=2), case('a', 'error', repeat=2, repeats=2)], pass_k=1, repeat=2)
    assert make_baseline(forgiven)['suites'][SUITE]['cases']['a']['status'] == 'passed'
    assert forgiven['suites'][0]['stats']['errored_cases'] == 0


def test_a_regression_gate_exactly_at_its_limit_holds_despite_float_sums() -> None:
    # 0.9 - 0.85 is 0.05000000000000004 and 1.2 * 0.1 is 0.12000000000000001: at the limit, not past it.
    baseline = make_baseline(report([case('a', score=0.9, cost=0.1)]))
    now = report([case('a', score=0.85, cost=0.12)], gate=Gate(max_score_drop=0.05, max_cost_increase_pct=20))
    gates = apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['suites'][0]['gates']
    assert [(g['name'], g['passed']) for g in gates] == [
        ('max_score_drop[quality]', True),
        ('max_cost_increase_pct', True),
    ]
