"""What the report's views draw besides the cases, as data (pure): the verdict, per-case deltas, the run history."""

from __future__ import annotations

import json
from pathlib import Path

from evaltrace import Gate
from evaltrace.report.baseline import make_baseline
from evaltrace.report.history import read_history, record_run, run_summary
from evaltrace.views.html_views import MAX_LISTED_CASES, case_deltas, verdict_view
from tests.support.reports import case, report

OTHER = 'evals/test_y.py::test_y'


def test_verdict_counts_failures_inside_and_outside_gates() -> None:
    gated = report([case('a'), case('b', 'failed')], gate=Gate(min_pass_rate=0.5))
    assert verdict_view(gated) == {
        'word': 'passed', 'failing': 1, 'ungated': 0, 'gated': 1, 'gates': 1, 'gates_failed': 0
    }  # fmt: skip
    ungated = report([case('a'), case('b', 'failed')])
    assert verdict_view(ungated)['word'] == 'failed'
    assert verdict_view(ungated)['ungated'] == 1
    failing_gate = report([case('a'), case('b', 'failed')], gate=Gate(min_pass_rate=0.9))
    assert (verdict_view(failing_gate)['word'], verdict_view(failing_gate)['gates_failed']) == ('gate failed', 1)
    assert verdict_view(report([case('a')], complete=False))['word'] == 'incomplete'


def test_case_deltas_classify_regressed_improved_new_removed_and_changed() -> None:
    before = report(
        [
            case('steady', score=0.5, cost=0.01),
            case('breaks', score=0.9),
            case('heals', 'failed', score=0.1),
            case('dips', score=0.8),
            case('gone'),
            case('moved', inputs_hash='h1'),
        ]
    )
    baseline = make_baseline(before)
    after = report(
        [
            case('steady', score=0.5, cost=0.02),  # only its cost changed: not listed
            case('breaks', 'failed', score=0.3),
            case('heals', score=0.7),
            case('dips', score=0.6),  # still passes, its score dropped
            case('fresh'),
            case('moved', inputs_hash='h2'),
        ]
    )
    after['baseline'] = {'removed_known': True}
    deltas = case_deltas(baseline, after)
    assert deltas is not None
    assert deltas['counts'] == {'regressed': 2, 'improved': 1, 'new': 1, 'removed': 1, 'changed': 1}
    # Cases that stopped passing come first, then the biggest score drops.
    assert [e['case'] for e in deltas['regressed']] == ['breaks', 'dips']
    breaks = deltas['regressed'][0]
    assert breaks['status'] == ['passed', 'failed']
    assert breaks['assertions_lost'] == ['Equals']
    assert breaks['scores'] == {'quality': [0.9, 0.3]}
    heals = deltas['improved'][0]
    assert (heals['case'], heals['status'], heals['assertions_gained']) == ('heals', ['failed', 'passed'], ['Equals'])
    assert [e['case'] for e in deltas['new']] == ['fresh']
    assert [e['case'] for e in deltas['removed']] == ['gone']
    assert [e['case'] for e in deltas['changed']] == ['moved']
    assert case_deltas(None, after) is None


def test_case_deltas_lists_are_bounded_with_their_full_count() -> None:
    n = MAX_LISTED_CASES + 5
    baseline = make_baseline(report([case(f'c{i}') for i in range(n)]))
    after = report([case(f'c{i}', 'failed') for i in range(n)])
    deltas = case_deltas(baseline, after)
    assert deltas is not None
    assert deltas['counts']['regressed'] == n
    assert len(deltas['regressed']) == MAX_LISTED_CASES


def test_history_keeps_the_last_runs_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / 'history.jsonl'
    for i in range(4):
        data = report([case('a'), case('b', 'failed' if i % 2 else 'passed', score=i / 4)])
        data['run_id'] = f'run{i}'
        runs = record_run(path, data, keep=3)
    assert [r['run_id'] for r in runs] == ['run1', 'run2', 'run3']
    assert read_history(path) == runs
    suite = runs[-1]['suites']['evals/test_x.py::test_x']
    assert (suite['pass_rate'], suite['score_averages'], suite['cases']) == (0.5, {'quality': 0.75}, 2)
    # A run written again (the same run id) replaces its line; a shard is not a run of its own.
    record_run(path, data, keep=3)
    shard = report([case('a')], shard=(1, 2))
    shard['run_id'] = 'shard'
    record_run(path, shard, keep=3)
    assert [r['run_id'] for r in read_history(path)] == ['run1', 'run2', 'run3']


def test_history_skips_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / 'history.jsonl'
    good = run_summary(report([case('a')]))
    path.write_text('{"cut short\n' + json.dumps(good) + '\n[1, 2]\n', encoding='utf-8')
    assert read_history(path) == [good]
    assert read_history(tmp_path / 'missing.jsonl') == []
