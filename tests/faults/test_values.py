"""What a task may return, and how big a value may be: every case keeps its verdict, output and trace link."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evaltrace.safety.bounds import CIRCULAR, bound_text, bound_value
from tests.support.eval_project import EvalProject

UNSERIALISABLE_SUITE = """
import evaltrace

class BadRepr:
    def __repr__(self):
        raise RuntimeError('repr refused')

@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str) -> object:
    if inputs == 'bytes':
        return b'\\xff\\xfe\\x00abc'
    if inputs == 'circular':
        d = {'a': 1}
        d['self'] = d
        return d
    if inputs == 'badrepr':
        return [1, BadRepr()]
    return inputs
"""


@pytest.mark.parametrize('xdist', [False, True], ids=['serial', 'xdist'])
def test_unserialisable_return_values_are_kept_with_a_marker(project: EvalProject, xdist: bool) -> None:
    project.dataset('cases', [{'name': n, 'inputs': n} for n in ('bytes', 'circular', 'badrepr', 'ok')])
    project.write('evals/test_s.py', UNSERIALISABLE_SUITE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', *(['-n', '1'] if xdist else []))
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    cases = project.cases()
    assert {k: v['status'] for k, v in cases.items()} == dict.fromkeys(('bytes', 'circular', 'badrepr', 'ok'), 'passed')
    assert cases['bytes']['output'] == "[evaltrace: 6 bytes, not UTF-8] b'\\xff\\xfe\\x00abc'"
    assert cases['circular']['output'] == {'a': 1, 'self': CIRCULAR}
    assert cases['badrepr']['output'] == [1, '[evaltrace: BadRepr object, repr raised RuntimeError: repr refused]']
    for case in cases.values():
        assert len(case['trace_id']) == 32 and case['trace_url']


# 9**6 = 531,441 strings from 300 bytes of YAML anchors: tens of megabytes once written out as JSON.
ALIAS_BOMB = """
cases:
- name: bomb
  inputs:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
"""

SIZE_SUITE = """
import evaltrace
from pydantic_evals import Case, Dataset

@evaltrace.suite('datasets/bomb.yaml')
async def test_bomb(inputs: dict) -> str:
    return 'ok'

big = Dataset(name='big', cases=[Case(name='big', inputs='x' * 10_000_000)])

@evaltrace.suite(big)
async def test_big(inputs: str) -> str:
    return inputs[:10] + 'y' * 3_000_000
"""


def _spool_lines(project: EvalProject) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in (project.path / '.evaltrace/spool').glob('*.jsonl')
        for line in path.read_text().splitlines()
    ]


@pytest.mark.parametrize(('args', 'limit'), [((), 20_000), (('--evaltrace-max-value-chars=1000',), 1000)])
def test_values_are_bounded_in_report_journal_and_spool(
    project: EvalProject, args: tuple[str, ...], limit: int
) -> None:
    project.write('datasets/bomb.yaml', ALIAS_BOMB)
    project.write('evals/test_size.py', SIZE_SUITE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', *args)
    assert result.ret == 0, result.stdout.str()
    report = project.path / '.evaltrace/report.json'
    assert report.stat().st_size < 10 * limit + 20_000  # two cases of four bounded values, and the report's own fields
    cases = project.cases()
    assert len(json.dumps(cases['bomb']['inputs'])) < 2 * limit
    assert 'more items' in json.dumps(cases['bomb']['inputs'])
    big = cases['big']
    assert big['inputs'].endswith(f'… [evaltrace: truncated, {10_000_000 - limit:,} more chars]')
    assert big['output'].endswith(f'… [evaltrace: truncated, {3_000_010 - limit:,} more chars]')
    # The spans were cut as they started, before any scrubbing or export: no attribute holds the 10 MB input.
    spans = _spool_lines(project)
    longest = max(len(json.dumps(span['attributes'])) for span in spans)
    assert longest < 3_100_000  # the 3 MB output is set after the span starts: only the store's scrubber cuts it
    inputs = [
        s['attributes']['inputs']
        for s in spans
        if s['span_name'] == 'case: {case_name}' and 'inputs' in s.get('attributes', {})
    ]
    assert inputs and all(len(json.dumps(i)) < 2 * limit for i in inputs)


def test_bound_value_unit() -> None:
    shared = ['x' * 10] * 10
    dag: Any = shared
    for _ in range(12):  # 10**12 leaves if expanded
        dag = [dag] * 10
    bounded = bound_value(dag, 5_000)
    assert len(json.dumps(bounded)) < 10_000
    assert bound_value('short', 10) == 'short'
    assert bound_value({1: b'ok', 'k': (1.5, None)}, 100) == {'1': 'ok', 'k': [1.5, None]}
    nested: Any = []
    for _ in range(1000):
        nested = [nested]
    assert 'nested deeper than' in json.dumps(bound_value(nested, 100_000))
    assert bound_text(bound_text('z' * 1000, 500), 100).endswith('… [evaltrace: truncated, 900 more chars]')


def test_a_mapping_keeps_its_key_when_its_value_spends_the_budget() -> None:
    bounded = bound_value({'blob': 'y' * 2_000, 'next': 1}, 1_000)
    assert list(bounded) == ['blob', '[evaltrace: truncated]']  # the key whose value was cut is still its name
    assert bounded['blob'].endswith('more chars]') and len(bounded['blob']) < 1_100
