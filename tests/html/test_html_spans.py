"""The spans a case's waterfall draws: read from the spool, in the order of their tree (as `evaltrace show` does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from opentelemetry.trace import set_span_in_context

from evaltrace.views.html_spans import load_spans
from tests.support.spool_recorder import Recorder

MS = 1_000_000  # nanoseconds


def test_spans_are_in_tree_order_not_start_order(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    # Two evaluators run concurrently; the judge's run (a child of the first) starts after the second evaluator.
    rec = recorder_factory('run-tree')
    tracer = rec.tracer('pydantic-evals')
    t0 = 1_700_000_000_000 * MS
    root = tracer.start_span('case: c1', start_time=t0)
    under_root = set_span_in_context(root)
    judge = tracer.start_span('Calling evaluator: LLMJudge', context=under_root, start_time=t0 + 1 * MS)
    other = tracer.start_span('Calling evaluator: searched_kb', context=under_root, start_time=t0 + 2 * MS)
    run = tracer.start_span('judge_output run', context=set_span_in_context(judge), start_time=t0 + 3 * MS)
    chat = tracer.start_span('chat offline-judge', context=set_span_in_context(run), start_time=t0 + 4 * MS)
    other.end(end_time=t0 + 5 * MS)
    chat.end(end_time=t0 + 6 * MS)
    run.end(end_time=t0 + 7 * MS)
    judge.end(end_time=t0 + 8 * MS)
    root.end(end_time=t0 + 9 * MS)
    rec.flush()
    trace_id = format(root.get_span_context().trace_id, '032x')

    spans = load_spans(store_path, [trace_id], run_id='run-tree')[trace_id]

    names = [s['n'] for s in spans]
    assert names == [
        'case: c1',
        'Calling evaluator: LLMJudge',
        'judge_output run',
        'chat offline-judge',
        'Calling evaluator: searched_kb',
    ]
    parents = [names[s['p']] if s['p'] >= 0 else None for s in spans]
    assert parents == [None, 'case: c1', 'Calling evaluator: LLMJudge', 'judge_output run', 'case: c1']
    assert [s['s'] for s in spans] == [0, 1, 3, 4, 2]  # start offsets in ms still place each bar
