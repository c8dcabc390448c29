"""A suite run is one Pydantic Evals experiment: report evaluators, analyses, metrics, one experiment span."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from logfire.testing import CaptureLogfire

from evaltrace.run.upstream import EXPECTED_SIGNATURES, UpstreamChanged, check_upstream
from tests.support.eval_project import EvalProject

SCHEMA = json.loads((Path(__file__).parents[2] / 'src/evaltrace/report/report.schema.json').read_text())

# A classifier with one mistake: `plain.py` runs it through plain `Dataset.evaluate`, the suite through evaltrace.
CLASSIFIER = """
import asyncio
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import ConfusionMatrixEvaluator, EqualsExpected
from pydantic_evals.dataset import increment_eval_metric, set_eval_attribute

LABELS = {'apple': 'fruit', 'carrot': 'vegetable', 'pear': 'fruit', 'tomato': 'vegetable'}
dataset = Dataset(
    name='food',
    cases=[Case(name=k, inputs=k, expected_output=('fruit' if k == 'tomato' else v)) for k, v in LABELS.items()],
    evaluators=[EqualsExpected()],
    report_evaluators=[ConfusionMatrixEvaluator()],
)


async def classify(inputs: str) -> str:
    increment_eval_metric('lookups', 2)
    set_eval_attribute('source', 'table')
    await asyncio.sleep(0)
    return LABELS[inputs]
"""

PLAIN = """
import json
from classifier import classify, dataset

report = dataset.evaluate_sync(classify, progress=False)
print(json.dumps([a.model_dump(mode='json') for a in report.analyses]))
"""

SUITE = """
import evaltrace
from classifier import classify, dataset

@evaltrace.suite(dataset)
async def test_food(inputs: str) -> str:
    return await classify(inputs)
"""


def _write(project: EvalProject) -> None:
    project.write('classifier.py', CLASSIFIER)
    project.write('plain.py', PLAIN)
    project.write('evals/test_food.py', SUITE)


def test_report_evaluators_run_on_the_suite_runs_report_as_in_plain_evaluate(project: EvalProject) -> None:
    _write(project)
    plain = project.pytester.run('python', 'plain.py')
    assert plain.ret == 0, plain.stderr.str()
    expected = json.loads(plain.stdout.lines[-1])
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3, failed=1)
    report = project.report()
    [suite] = report['suites']
    assert suite['experiment']['analyses'] == expected
    assert expected[0]['type'] == 'confusion_matrix'
    result.stdout.fnmatch_lines(['*analysis Confusion Matrix: 2 classes*3 of 4 on the diagonal*'])
    import jsonschema

    jsonschema.validate(report, SCHEMA)


def test_task_metrics_and_attributes_reach_each_case_and_the_suite_run(project: EvalProject) -> None:
    _write(project)
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    report = project.report()
    assert {c['case']: (c['metrics'], c['attributes']) for c in report['cases']} == {
        name: ({'lookups': 2}, {'source': 'table'}) for name in ('apple', 'carrot', 'pear', 'tomato')
    }
    assert report['suites'][0]['experiment']['metric_averages'] == {'lookups': 2.0}


RAISING = """
from dataclasses import dataclass
import evaltrace
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import ReportEvaluator, ReportEvaluatorContext


@dataclass
class Broken(ReportEvaluator):
    def evaluate(self, ctx: ReportEvaluatorContext):
        raise ValueError('no labels to compare')


dataset = Dataset(name='words', cases=[Case(name=f'c{i}', inputs=f'w{i}') for i in range(3)], report_evaluators=[Broken()])


@evaltrace.suite(dataset)
def test_words(inputs: str) -> str:
    return inputs
"""


def test_a_report_evaluator_that_raises_fails_its_suite_run_and_loses_no_case(project: EvalProject) -> None:
    project.write('evals/test_words.py', RAISING)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3, failed=1)  # every case passed; the suite run's failed check is its own failure
    failed = [line for line in result.outlines if line.startswith('FAILED ')]
    assert failed and failed[0].startswith('FAILED evals/test_words.py::test_words::gate[report_evaluator Broken]')
    assert result.ret != 0
    report = project.report()
    assert len(report['cases']) == 3
    [suite] = report['suites']
    assert suite['passed'] is False
    [gate] = suite['gates']
    assert gate['name'] == 'report_evaluator Broken'
    assert gate['actual'] == 'ValueError: no labels to compare'
    result.stdout.fnmatch_lines(['*report_evaluator Broken*FAIL*ValueError: no labels to compare*'])


def _shape(spans: list[dict[str, Any]]) -> tuple[set[str], dict[str, set[str]]]:
    """The experiment-level shape: each experiment's and case span's name and attribute keys."""
    experiments = [s for s in spans if s['name'] == 'evaluate {name}']
    assert len(experiments) == 1
    exp = experiments[0]
    cases = [s for s in spans if s['parent'] is not None and s['parent']['span_id'] == exp['context']['span_id']]
    keys: dict[str, set[str]] = {'evaluate {name}': set(exp['attributes'])}
    for case in cases:
        keys.setdefault(case['name'], set()).update(case['attributes'])
    return {s['name'] for s in cases}, keys


def test_the_experiment_has_the_shape_plain_evaluate_gives_it(project: EvalProject, capfire: CaptureLogfire) -> None:
    _write(project)
    import sys

    sys.path.insert(0, str(project.path))
    try:
        from classifier import classify, dataset  # pyright: ignore[reportMissingImports]

        asyncio.run(dataset.evaluate(classify, progress=False))  # evaluate_sync would leave its loop open
        plain = capfire.exporter.exported_spans_as_dict()
        capfire.exporter.clear()
        result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
        result.assert_outcomes(passed=3, failed=1)
        ours = capfire.exporter.exported_spans_as_dict()
    finally:
        sys.path.remove(str(project.path))
        sys.modules.pop('classifier', None)
    plain_names, plain_keys = _shape(plain)
    our_names, our_keys = _shape(ours)
    assert our_names == plain_names == {'case: {case_name}', 'report_evaluator: {evaluator_name}'}
    assert our_keys['report_evaluator: {evaluator_name}'] == plain_keys['report_evaluator: {evaluator_name}']
    # Same keys; evaltrace's case spans add the link to the case's own trace.
    assert our_keys['evaluate {name}'] == plain_keys['evaluate {name}']
    assert our_keys['case: {case_name}'] - plain_keys['case: {case_name}'] == {'evaltrace.case_trace_id'}
    assert plain_keys['case: {case_name}'] <= our_keys['case: {case_name}']


def test_a_changed_private_function_fails_loudly_naming_it() -> None:
    check_upstream()  # the installed pydantic-evals is the one evaltrace was written for
    missing = SimpleNamespace()
    with pytest.raises(UpstreamChanged, match=r'pydantic_evals\.dataset\._run_task_and_evaluators'):
        check_upstream(missing)

    def _run_task_and_evaluators(task: Any, case: Any) -> None: ...

    changed = SimpleNamespace(**{name: lambda: None for name in EXPECTED_SIGNATURES})
    changed._run_task_and_evaluators = _run_task_and_evaluators
    with pytest.raises(UpstreamChanged, match=r'_run_task_and_evaluators\(.*task.*case.*\)'):
        check_upstream(changed)


CHECKED = """
import evaltrace
from evaltrace import Gate
from classifier import classify, dataset


def at_least_three_cases(report) -> bool:
    return len(report.cases) >= 3


def needs_an_analysis(report) -> bool:
    raise LookupError('no scalar analysis named Accuracy')


@evaltrace.suite(dataset, gate=Gate(min_analysis={gates}), report_check={check})
async def test_food(inputs: str) -> str:
    return await classify(inputs)
"""


def _gates(project: EvalProject) -> dict[str, dict[str, Any]]:
    return {g['name']: g for g in project.report()['suites'][0]['gates']}


@pytest.mark.parametrize('xdist', [False, True], ids=['serial', 'xdist'])
def test_gates_on_analysis_values_and_a_report_check(project: EvalProject, xdist: bool) -> None:
    """Under `-n 2` too: the suite run stays on one worker, which runs its report evaluators and report check."""
    _write(project)
    gates = "{'Confusion Matrix.accuracy': 0.7, 'Confusion Matrix.recall[fruit]': 0.9}"
    project.write('evals/test_food.py', CHECKED.format(gates=gates, check='at_least_three_cases'))
    if xdist:
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-n', '2')
    else:
        result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert project.report()['suites'][0]['experiment'] is not None, result.stdout.str()
    found = _gates(project)
    assert found['min_analysis[Confusion Matrix.accuracy]']['actual'] == 0.75
    assert found['min_analysis[Confusion Matrix.accuracy]']['passed'] is True
    # fruit: apple, pear and tomato expected, tomato predicted as a vegetable: recall 2/3
    assert found['min_analysis[Confusion Matrix.recall[fruit]]']['actual'] == round(2 / 3, 6)
    assert found['min_analysis[Confusion Matrix.recall[fruit]]']['passed'] is False
    assert found['report_check at_least_three_cases']['passed'] is True
    assert result.ret == 6  # every failing case is gated, and a gate failed


def test_a_report_check_that_raises_and_an_analysis_that_does_not_exist_fail_with_their_names(
    project: EvalProject,
) -> None:
    _write(project)
    project.write('evals/test_food.py', CHECKED.format(gates="{'Accuracy': 0.5}", check='needs_an_analysis'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 6
    found = _gates(project)
    check = found['report_check needs_an_analysis']
    assert (check['passed'], check['actual']) == (False, 'LookupError: no scalar analysis named Accuracy')
    missing = found['min_analysis[Accuracy]']
    assert missing['passed'] is False
    assert "no analysis value 'Accuracy' in evals/test_food.py::test_food" in missing['detail']
    assert 'Confusion Matrix.accuracy' in missing['detail']
    assert len(project.report()['cases']) == 4  # no case lost


def test_a_gate_on_a_task_metric(project: EvalProject) -> None:
    _write(project)
    project.write(
        'evals/test_food.py',
        CHECKED.format(gates='{}', check='None').replace(
            'min_analysis={}', "min_metric_avg={'lookups': 1}, max_metric_avg={'lookups': 1.5}"
        ),
    )
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    found = _gates(project)
    assert (found['min_metric_avg[lookups]']['actual'], found['min_metric_avg[lookups]']['passed']) == (2.0, True)
    assert (found['max_metric_avg[lookups]']['actual'], found['max_metric_avg[lookups]']['passed']) == (2.0, False)
    assert project.report()['suites'][0]['stats']['metric_averages'] == {'lookups': 2.0}


def test_pydantic_evals_table_and_the_experiment_link_in_the_summary(project: EvalProject) -> None:
    _write(project)
    args = ['evals', '-p', 'no:cacheprovider', '--evaltrace-project-url=https://logfire.example/org/proj']
    result = project.pytester.runpytest_inprocess(*args, '--evaltrace-table=all')
    experiment = project.report()['suites'][0]['experiment']
    url = f'https://logfire.example/org/proj/evals/compare?experiment={experiment["trace_id"]}-{experiment["span_id"]}'
    result.stdout.fnmatch_lines([f'    experiment: {url}', '*Evaluation Summary: test_food*'])
    for name in ('apple', 'carrot', 'pear', 'tomato'):
        assert f'│ {name}' in result.stdout.str()
    # `failures` shows only the failing case, against the committed baseline once there is one.
    saved = project.pytester.run('evaltrace', 'baseline', 'save')
    assert saved.ret == 0, saved.stderr.str()
    result = project.pytester.runpytest_inprocess(*args, '--evaltrace-table=failures')
    text = result.stdout.str()
    assert '│ tomato' in text and '│ apple' not in text
    assert 'Evaluation Diff' in text
