"""Shard assignment and the merge of shard reports, with every way a merge can be incomplete (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from evaltrace.collect.shard import ShardPlan, assign_shards, plan_digest
from evaltrace.judge.gates import Gate
from evaltrace.report.decide import report_verdict
from evaltrace.report.merge import merge_reports
from tests.support.reports import case, report


def test_assignment_is_deterministic_and_balanced_by_case_count() -> None:
    groups = {f'case{i}': 1 for i in range(10)}
    first = assign_shards(groups, 3)
    assert first == assign_shards(dict(reversed(list(groups.items()))), 3)  # order does not matter
    loads = [sum(1 for v in first.values() if v == s) for s in (1, 2, 3)]
    assert sorted(loads) == [3, 3, 4]
    weighted = assign_shards({'big': 4, 'a': 1, 'b': 1, 'c': 1, 'd': 1}, 2)
    assert weighted['big'] == 1
    assert {weighted[k] for k in 'abcd'} == {2}
    assert assign_shards({'x': 1}, 4) == {'x': 1}


def _shards(n: int, gate: Gate | None = None) -> list[tuple[str, dict[str, Any]]]:
    cases = [case(f'c{i}', 'passed' if i % 3 else 'failed') for i in range(6)]
    digest = plan_digest([c.nodeid for c in cases])
    out: list[tuple[str, dict[str, Any]]] = []
    for index in range(1, n + 1):
        mine = [c for j, c in enumerate(cases) if j % n == index - 1]
        data = report(mine, shard=(index, n), session_gate=gate)
        data['shard'] = ShardPlan(index, n, len(cases), digest).to_dict()
        out.append((f's{index}.json', data))
    return out


def test_a_complete_merge_recomputes_every_gate_on_the_merged_cases() -> None:
    shards = _shards(3, gate=Gate(min_pass_rate=0.6))
    # Shard 1 alone holds both failing cases and fails the gate; the merged run passes it (4 of 6).
    assert [data['session']['gates_passed'] for _, data in shards] == [False, True, True]
    result = merge_reports(shards)
    merged = result.report
    assert result.problems == []
    assert merged['complete'] is True
    assert merged['session']['stats']['cases'] == 6
    assert merged['session']['stats']['pass_rate'] == pytest.approx(4 / 6)
    gates = {g['name']: g['passed'] for g in merged['session']['gates']}
    assert gates == {'min_pass_rate': True, 'complete': True}
    assert merged['session']['gates_passed']
    assert len(merged['expected']) == 6


@pytest.mark.parametrize(
    ('mangle', 'problem'),
    [
        (lambda s: s[:2], 'shard 3/3 is missing'),
        (lambda s: [*s, s[1]], 'shard 2/3 is given more than once'),
        (
            lambda s: [s[0], s[1], ('other.json', {**s[2][1], 'shard': {**s[2][1]['shard'], 'count': 4}})],
            'different numbers of shards',
        ),
        (lambda s: [s[0], s[1], ('s3.json', {**s[2][1], 'cases': s[2][1]['cases'][:1]})], 'expected case(s) never ran'),
        (
            lambda s: [s[0], s[1], ('s3.json', {**s[2][1], 'cases': s[2][1]['cases'] + s[0][1]['cases'][:1]})],
            'ran more than once',
        ),
        (lambda s: [s[0], s[1], ('s3.json', {**s[2][1], 'complete': False})], 's3.json is incomplete'),
        (
            lambda s: [s[0], s[1], ('s3.json', {**s[2][1], 'shard': {**s[2][1]['shard'], 'plan_digest': 'x'}})],
            'planned from different selections',
        ),
        (
            lambda s: [s[0], s[1], ('s3.json', {**s[2][1], 'expected': []})],
            'expected 4 cases together, but the run selected 6',
        ),
    ],
    ids=['missing', 'twice', 'count', 'never-ran', 'duplicate-case', 'interrupted', 'other-plan', 'lost-expected'],
)
def test_an_incomplete_merge_never_passes(mangle: Any, problem: str) -> None:
    result = merge_reports(mangle(_shards(3)))
    assert any(problem in p for p in result.problems), result.problems
    merged = result.report
    assert merged['complete'] is False
    assert not merged['session']['gates_passed']
    [complete] = [g for g in merged['session']['gates'] if g['name'] == 'complete']
    assert not complete['passed']
    assert problem in complete['detail']


def test_a_suite_runs_analysis_checks_split_across_shards_are_not_taken_from_one_shard() -> None:
    # Each shard's report evaluators saw only its own cases; the merge took the first shard's analyses, so the
    # order of the files decided the verdict. A check on a split suite run's report is now not checked, and fails.
    shards = _shards(2)
    key = 'Confusion Matrix.recall[fruit]'
    for (_, data), recall in zip(shards, (0.5, 1.0), strict=True):
        [suite] = data['suites']
        suite['gate_spec'] = {'min_analysis': {key: 0.7}}
        matrix = {'type': 'confusion_matrix', 'title': 'Confusion Matrix', 'class_labels': ['fruit', 'veg']}
        hits = int(recall * 2)
        matrix['matrix'] = [[hits, 2 - hits], [0, 2]]
        checks = [{'name': 'enough', 'passed': True, 'error': None}]
        suite['experiment'] = {
            'name': 'x',
            'analyses': [matrix],
            'report_evaluator_failures': [],
            'report_checks': checks,
        }
    verdicts: list[tuple[str, str]] = []
    for order in (shards, shards[::-1]):
        merged = merge_reports(order).report
        [suite] = merged['suites']
        gates = {g['name']: g for g in suite['gates']}
        assert not gates[f'min_analysis[{key}]']['passed']
        assert gates[f'min_analysis[{key}]']['detail'].startswith('not checked: the suite run ran in 2 shards')
        assert not gates['report_check enough']['passed']
        assert suite['experiment']['analyses'] == []
        decided = report_verdict(merged)
        verdicts.append((decided.word, decided.reason))
    assert verdicts == [('gate failed', f'gate(s) failed: min_analysis[{key}], report_check enough')] * 2
