"""What a run leaves in the local store: its spool, read by the HTML report; DuckDB only when queried or when due."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evaltrace.store.duckdb import open_store
from evaltrace.store.files import read_retention, spool_dir, spooled_runs
from evaltrace.views.html import read_page_data
from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace

@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    return inputs.upper()
"""


def run(project: EvalProject, *args: str) -> str:
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', *args)
    result.assert_outcomes(passed=3)
    return str(project.report()['run_id'])


def test_a_run_spools_its_spans_the_html_reads_them_and_the_first_query_merges(
    project: EvalProject, upper_cases: Callable[[int], list[dict[str, Any]]]
) -> None:
    project.dataset('words', upper_cases(3), evaluators=['EqualsExpected'])
    project.write('evals/test_words.py', SUITE)
    run_id = run(project, '--evaltrace-html-traces=all')  # the cases pass: by default their waterfalls are left out
    store = project.path / '.evaltrace' / 'traces.duckdb'

    assert not store.exists()  # the run never opened DuckDB
    assert spooled_runs(store) == {run_id}
    assert read_retention(store) == 20  # the default, for the merge a later query runs
    html = (project.path / '.evaltrace' / 'report.html').read_text(encoding='utf-8')
    trace_ids = {c['trace_id'] for c in project.report()['cases']}
    # Each case's block carries the spans of its trace, read from the spool: the root (pydantic-evals' case span)
    # and the spans under it.
    chunk = read_page_data(html)['et-z0']
    for i in range(3):
        spans = chunk['cases'][i]['spans']
        assert (spans[0]['n'], spans[0]['sn']) == (f'case test_words[c{i}]', 'case: {case_name}')
        assert 'execute {task}' in [s['sn'] for s in spans]

    con = open_store(store)  # merges the spool first
    rows = con.execute('SELECT DISTINCT run_id, trace_id FROM records').fetchall()
    assert {r[0] for r in rows} == {run_id}
    experiment = project.report()['suites'][0]['experiment']['trace_id']  # the suite run's experiment: its own trace
    assert {r[1] for r in rows} == trace_ids | {experiment}
    con.close()
    assert spooled_runs(store) == set()


def test_offline_the_experiment_is_its_span_alone(
    project: EvalProject, upper_cases: Callable[[int], list[dict[str, Any]]]
) -> None:
    """With no backend that shows experiments, the experiment keeps no per-case spans that no one would read.

    (With one, tests/core/test_tracing.py sees them.) In a subprocess: an exporter that another test left configured
    in this process would rightly count as such a backend.
    """
    project.dataset('words', upper_cases(3), evaluators=['EqualsExpected'])
    project.write('evals/test_words.py', SUITE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3)
    suite = project.report()['suites'][0]
    assert suite['stats']['passed'] == 3  # the experiment's report still holds every case
    con = open_store(project.path / '.evaltrace' / 'traces.duckdb')
    try:
        rows = con.execute('SELECT span_name FROM records WHERE trace_id = ?', [suite['experiment']['trace_id']])
        assert rows.fetchall() == [('evaluate {name}',)]
    finally:
        con.close()


def test_a_run_merges_when_the_spool_holds_more_runs_than_the_retention(
    project: EvalProject, upper_cases: Callable[[int], list[dict[str, Any]]]
) -> None:
    project.dataset('words', upper_cases(3), evaluators=['EqualsExpected'])
    project.write('evals/test_words.py', SUITE)
    store = project.path / '.evaltrace' / 'traces.duckdb'
    first = run(project, '--evaltrace-retention=2')
    second = run(project, '--evaltrace-retention=2')
    assert not store.exists()
    assert spooled_runs(store) == {first, second}
    third = run(project, '--evaltrace-retention=2')  # three runs waiting, two kept: this one merges

    assert store.exists()
    assert not any(spool_dir(store).glob('*.jsonl'))
    con = open_store(store, merge=False)
    kept = {r[0] for r in con.execute('SELECT DISTINCT run_id FROM records').fetchall()}
    con.close()
    assert kept == {second, third}
