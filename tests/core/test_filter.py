"""Selecting cases by metadata: `--evaltrace-filter "difficulty=hard"` (and the `filter` setting's other sources),
composed with `-k`, applied before sharding, recorded in report.json; the expression language, unit-tested."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evaltrace.collect.shard import ShardPlan, plan_digest
from evaltrace.report.merge import merge_reports
from evaltrace.settings.filter import FilterError, parse_filter
from tests.support.eval_project import EvalProject
from tests.support.reports import case, report

SCHEMA = json.loads((Path(__file__).parents[2] / 'src/evaltrace/report/report.schema.json').read_text())

CASES: list[dict[str, Any]] = [
    {
        'name': 'a',
        'inputs': 'a',
        'metadata': {'difficulty': 'hard', 'tags': ['smoke', 'billing'], 'meta': {'level': 2}},
    },
    {'name': 'b', 'inputs': 'b', 'metadata': {'difficulty': 'easy', 'tags': ['smoke'], 'meta': {'level': 1}}},
    {'name': 'c', 'inputs': 'c', 'metadata': {'difficulty': 'hard', 'tags': [], 'meta': {'level': 1}}},
    {'name': 'd', 'inputs': 'd'},
]

SUITE = """
import evaltrace

@evaltrace.suite('datasets/words.yaml')
def test_words(inputs: str) -> str:
    return inputs
"""


def _project(project: EvalProject) -> EvalProject:
    project.dataset('words', CASES)
    project.write('evals/test_words.py', SUITE)
    project.write('tests/test_plain.py', 'def test_plain():\n    pass\n')
    return project


def _ran(project: EvalProject) -> list[str]:
    return sorted(c['case'] for c in project.report()['cases'])


def test_the_filter_selects_cases_by_metadata_and_records_it(project: EvalProject) -> None:
    _project(project)
    result = project.pytester.runpytest_subprocess('evals', 'tests', '--evaltrace-filter', 'difficulty=hard')
    result.assert_outcomes(passed=3, deselected=2)  # a, c and the plain test, which is no eval case
    assert _ran(project) == ['a', 'c']
    report = project.report()
    assert report['session']['filter'] == 'difficulty=hard'
    jsonschema.validate(report, SCHEMA)
    assert sorted(report['expected']) == ['evals/test_words.py::test_words[a]', 'evals/test_words.py::test_words[c]']


def test_the_filter_composes_with_k(project: EvalProject) -> None:
    _project(project)
    # tags=smoke selects a and b; -k (a substring of the item or its parents' names: `evals` holds an `a`) drops b.
    result = project.pytester.runpytest_subprocess('evals', '--evaltrace-filter', 'tags=smoke', '-k', 'not b')
    result.assert_outcomes(passed=1, deselected=3)
    assert _ran(project) == ['a']


@pytest.mark.parametrize(
    ('source', 'expected'),
    [('env', ['b', 'c']), ('ini', ['b', 'c']), ('pyproject', ['b', 'c'])],
)
def test_the_filter_setting_from_env_ini_and_pyproject(
    project: EvalProject, monkeypatch: pytest.MonkeyPatch, source: str, expected: list[str]
) -> None:
    _project(project)
    expression = 'meta.level=1 and not difficulty=missing'
    if source == 'env':
        monkeypatch.setenv('EVALTRACE_FILTER', expression)
    elif source == 'ini':
        project.write('pyproject.toml', f'[tool.pytest.ini_options]\nevaltrace_filter = {json.dumps(expression)}\n')
    else:
        project.write(
            'pyproject.toml', f'[tool.pytest.ini_options]\n[tool.evaltrace]\nfilter = {json.dumps(expression)}\n'
        )
    result = project.pytester.runpytest_subprocess('evals')
    result.assert_outcomes(passed=2, deselected=2)
    assert _ran(project) == expected


def test_the_filter_applies_before_the_shards_split_the_selection(project: EvalProject) -> None:
    _project(project)
    ran: list[str] = []
    for shard in ('1/2', '2/2'):
        result = project.pytester.runpytest_subprocess(
            'evals', '--evaltrace-filter', 'difficulty=hard or meta.level=2', f'--evaltrace-shard={shard}'
        )
        assert result.ret == 0
        ran += _ran(project)
        # Each shard plans from the filtered selection: two cases, one each.
        assert project.report()['shard']['total_cases'] == 2
    assert sorted(ran) == ['a', 'c']


def test_the_filter_under_xdist(project: EvalProject) -> None:
    _project(project)
    result = project.pytester.runpytest_subprocess('evals', '-n', '2', '--evaltrace-filter', 'difficulty!=hard')
    result.assert_outcomes(passed=2)
    assert _ran(project) == ['b', 'd']
    assert project.report()['session']['filter'] == 'difficulty!=hard'


def test_a_bad_filter_is_a_one_line_usage_error(project: EvalProject) -> None:
    _project(project)
    result = project.pytester.runpytest_subprocess('evals', '--evaltrace-filter', 'difficulty=hard and (')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith('ERROR')]
    assert errors == [
        'ERROR: evaltrace: bad value for filter from option --evaltrace-filter: expected key=value at the end of '
        "'difficulty=hard and ('"
    ]
    assert 'INTERNALERROR' not in result.stderr.str()


def test_the_filter_is_in_help(project: EvalProject) -> None:
    result = project.pytester.runpytest_subprocess('--help')
    result.stdout.fnmatch_lines(['*--evaltrace-filter=EXPR*'])
    assert 'EVALTRACE_FILTER' in result.stdout.str()


# ---- the expression language, pure ----

META: dict[str, Any] = {
    'difficulty': 'hard',
    'tags': ['smoke', 'billing'],
    'meta': {'level': 2, 'flaky': False, 'owner': None},
    'score': 0.5,
    'name with space': 'x',
}


@pytest.mark.parametrize(
    ('expression', 'expected'),
    [
        ('difficulty=hard', True),
        ('difficulty = hard', True),
        ('difficulty=easy', False),
        ('difficulty!=easy', True),
        ('difficulty!=hard', False),
        ('tags=smoke', True),  # a list matches if any element does
        ('tags=nightly', False),
        ('tags!=nightly', True),
        ('tags!=smoke', False),
        ('meta.level=2', True),  # dotted paths; numbers compare as numbers
        ('meta.level=2.0', True),
        ('meta.level=3', False),
        ('meta.flaky=false', True),
        ('meta.owner=null', True),
        ('score=0.5', True),
        ('missing=x', False),  # a missing key matches no value...
        ('missing!=x', True),  # ...and differs from every one
        ('meta.level.deeper=1', False),
        ("difficulty='hard'", True),
        ('"name with space"=x', False),  # keys are words: a quoted key is a value, not a key
        ('difficulty=hard and tags=billing', True),
        ('difficulty=easy or tags=billing', True),
        ('not difficulty=easy', True),
        ('not (difficulty=hard or tags=nightly)', False),
        ('difficulty=hard and (tags=nightly or meta.level=2)', True),
        ('difficulty=easy or difficulty=hard and tags=nightly', False),  # and binds tighter than or
        ('NOT difficulty=easy AND tags=smoke', True),
    ],
)
def test_filter_expressions(expression: str, expected: bool) -> None:
    if expression.startswith('"name'):
        with pytest.raises(FilterError):
            parse_filter(expression)
        return
    assert parse_filter(expression).matches(META) is expected


def test_filter_matches_cases_without_metadata() -> None:
    assert parse_filter('difficulty!=hard').matches(None) is True
    assert parse_filter('difficulty=hard').matches(None) is False
    assert parse_filter('difficulty=hard').matches('not a mapping') is False


@pytest.mark.parametrize(
    ('expression', 'message'),
    [
        ('', 'empty expression'),
        ('difficulty', "expected = or != after 'difficulty' at column 11"),
        ('difficulty=', 'expected a value after = at column 12'),
        ('difficulty=hard and', "expected key=value at the end of 'difficulty=hard and'"),
        ('(difficulty=hard', "expected ) at the end of '(difficulty=hard'"),
        ('difficulty=hard)', "unexpected ) at column 16 of 'difficulty=hard)'"),
        ("difficulty='hard", 'unterminated quote at column 12'),
        ('difficulty==hard', 'expected a value after = at column 12'),
        ('a=b c=d', "expected and, or or ) at column 5 of 'a=b c=d'"),
    ],
)
def test_bad_filter_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(expression)
    assert message in str(info.value)
    assert '\n' not in str(info.value)


def test_merging_shards_run_with_different_filters_is_a_problem() -> None:
    cases = [case('c0', 'passed'), case('c1', 'passed')]
    digest = plan_digest([c.nodeid for c in cases])
    shards: list[tuple[str, dict[str, Any]]] = []
    for index, (mine, expression) in enumerate([([cases[0]], 'a=1'), ([cases[1]], 'a=2')], 1):
        data = report(mine, shard=(index, 2))
        data['shard'] = ShardPlan(index, 2, 2, digest).to_dict()
        data['session']['filter'] = expression
        shards.append((f's{index}.json', data))
    assert 'the shards were run with different filters (--evaltrace-filter)' in merge_reports(shards).problems
    shards[1][1]['session']['filter'] = 'a=1'
    merged = merge_reports(shards)
    assert merged.problems == [] and merged.report['session']['filter'] == 'a=1'
