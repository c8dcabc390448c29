"""The one reader of the store (`_records`): the same span whether read from the spool or from DuckDB; runs, cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evaltrace.store.duckdb import open_store
from evaltrace.store.records import (
    case_traces,
    latest_runs,
    run_ids_starting_with,
    run_suites,
    spans_of_traces,
    trace_ids_starting_with,
    trace_spans,
    traces_in_run,
)
from tests.support.spool_recorder import Recorder

NODEID = 'evals/test_words.py::test_words[long]'


def _record_case(rec: Recorder, nodeid: str = NODEID) -> str:
    """One case's spans as the plugin leaves them: a root marked as a case, a task span that raised, a log."""
    attributes = {'evaltrace.case': True, 'nodeid': nodeid}
    with rec.logfire.span('case: {case_name}', case_name='long', _tags=['evaltrace'], **attributes) as root:
        with pytest.raises(ValueError), rec.logfire.span('execute {task}', task='words', output={'words': [1, 2]}):
            raise ValueError('no words')
        rec.logfire.warn('a note about {thing}', thing='it')
    rec.flush()
    return format(root.get_span_context().trace_id, '032x')


def test_a_span_reads_the_same_from_the_spool_and_from_duckdb(
    recorder_factory: Callable[..., Recorder], store_path: Path
) -> None:
    trace_id = _record_case(recorder_factory('run-a'))

    from_spool = trace_spans(store_path, [trace_id], run_id='run-a')[trace_id]
    con = open_store(store_path)  # merges the spool into DuckDB
    try:
        from_store = spans_of_traces(con, [trace_id])[trace_id]
    finally:
        con.close()

    assert sorted(from_spool) == sorted(from_store)
    by_name = {span.span_name: span for span in from_store}
    root, task, log = by_name['case: {case_name}'], by_name['execute {task}'], by_name['a note about {thing}']
    assert root.message == 'case: long' and root.tags == ('evaltrace',) and root.parent_span_id is None
    assert root.attributes['nodeid'] == NODEID
    assert task.parent_span_id == root.span_id
    assert task.attributes['output'] == {'words': [1, 2]}
    assert task.json_schema['output']['type'] == 'object'
    assert (task.exception_type, task.exception_message) == ('ValueError', 'no words')
    assert 'raise ValueError' in (task.exception_stacktrace or '')
    assert (task.level, task.status_code, task.kind) == ('error', 'ERROR', 'span')
    assert (log.kind, log.level, log.message) == ('log', 'warn', 'a note about it')
    assert root.start_us <= task.start_us and task.duration >= 0


def test_runs_and_their_cases(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    first = _record_case(recorder_factory('run-1'))
    second = _record_case(recorder_factory('run-2'), nodeid='evals/test_other.py::test_other[x]')
    con = open_store(store_path)
    try:
        assert set(latest_runs(con, 5)) == {'run-1', 'run-2'}
        assert run_ids_starting_with(con, 'run-') == ['run-1', 'run-2']
        assert run_suites(con, 'run-1') == ['evals/test_words.py::test_words']
        assert case_traces(con, 'run-1', [NODEID, 'evals/test_x.py::test_x[gone]']) == {NODEID: first}
        assert traces_in_run(con, 'run-1', [first, second]) == {first}
        # Logfire's trace ids start with a timestamp: two traces of one millisecond share their first 12 digits.
        assert trace_ids_starting_with(con, first[:20].upper()) == [first]
        assert spans_of_traces(con, [first], run_id='run-2') == {}
    finally:
        con.close()


def test_trace_spans_needs_no_store_when_the_spool_has_them(
    recorder_factory: Callable[..., Recorder], store_path: Path
) -> None:
    trace_id = _record_case(recorder_factory('run-s'))
    assert len(trace_spans(store_path, [trace_id, ''], run_id='run-s')[trace_id]) == 3
    assert not store_path.exists()  # the end of a run never pays for DuckDB
    assert trace_spans(store_path, []) == {}
