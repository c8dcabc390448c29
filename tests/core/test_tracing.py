"""Per-case traces, root-span usage aggregates and the judge share, seen through captured spans."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import logfire
import pytest
from logfire.testing import CaptureLogfire, TestExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from evaltrace.results.usage import usage_of_span
from tests.support.eval_project import EvalProject

SUITE = """
import asyncio
import evaltrace
from pydantic_ai import Agent
from helpers_models import priced_model

agent = Agent(priced_model(input_tokens=100, output_tokens=20))

@evaltrace.suite('datasets/words.yaml', max_concurrency={concurrency})
async def test_words(inputs: str) -> str:
    await asyncio.sleep(0.05)
    first = await agent.run(inputs)
    second = await agent.run(inputs)
    return first.output if first.output == second.output else 'mismatch'
"""


def _spans(exporter: TestExporter) -> list[ReadableSpan]:
    return [s for s in exporter.exported_spans if (s.attributes or {}).get('logfire.span_type') != 'pending_span']


def _roots(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get('evaltrace.case')]


def _run(project: EvalProject, *args: str) -> pytest.RunResult:
    return project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', *args)


def test_each_case_has_its_own_trace_rooted_at_the_case_span(
    project: EvalProject, capfire: CaptureLogfire, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(6), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(concurrency=6))
    result = _run(project, 'evals')
    result.assert_outcomes(passed=6)

    spans = _spans(capfire.exporter)
    roots = _roots(spans)
    assert len(roots) == 6
    assert all(r.parent is None for r in roots)
    trace_ids = {r.context.trace_id for r in roots}  # pyright: ignore[reportOptionalMemberAccess]
    assert len(trace_ids) == 6
    # Everything the case caused is in its trace: agent runs, model requests, the evaluator.
    for root in roots:
        names = {s.name for s in spans if s.context.trace_id == root.context.trace_id}  # pyright: ignore[reportOptionalMemberAccess]
        assert 'invoke_agent agent' in names or any(
            n.startswith('agent run') or n.startswith('invoke_agent') for n in names
        )
        assert 'chat gpt-4o-mini' in names
        assert any(n.startswith('evaluator:') for n in names)
    # The report carries the same ids.
    report_ids = {c['trace_id'] for c in project.report()['cases']}
    assert report_ids == {f'{t:032x}' for t in trace_ids}
    # The root is pydantic-evals' `case: …` span of the case, with the case stamped on; no root is an experiment.
    for root in roots:
        attrs = root.attributes or {}
        assert root.name == 'case: {case_name}' and 'gen_ai.operation.name' not in attrs
        assert attrs['logfire.msg'] == f'case {attrs["case"]}'
        assert attrs['evaltrace.status'] == 'passed'
        assert attrs['nodeid'] == f'evals/test_words.py::{attrs["case"]}'
    # One experiment for the suite run, in a trace of its own, whose case spans link to the cases' traces.
    experiments = [s for s in spans if s.name == 'evaluate {name}']
    assert len(experiments) == 1 and experiments[0].context.trace_id not in trace_ids  # pyright: ignore[reportOptionalMemberAccess]
    case_spans = [s for s in spans if s.name == 'case: {case_name}' and s.parent is not None]
    assert len(case_spans) == 6
    assert {link.context.trace_id for s in case_spans for link in s.links} == trace_ids


STATUS_SUITE = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/mixed.yaml', timeout=0.5)
async def test_mixed(inputs: str) -> str:
    if inputs == 'boom':
        raise RuntimeError('boom')
    if inputs == 'hang':
        await asyncio.sleep(30)
    return inputs.upper()
"""


def test_each_root_carries_its_case_status_timeouts_included(project: EvalProject, capfire: CaptureLogfire) -> None:
    cases = [
        {'name': 'ok', 'inputs': 'ok', 'expected_output': 'OK'},
        {'name': 'wrong', 'inputs': 'wrong', 'expected_output': 'RIGHT'},
        {'name': 'boom', 'inputs': 'boom', 'expected_output': 'BOOM'},
        {'name': 'hang', 'inputs': 'hang', 'expected_output': 'HANG'},
    ]
    project.dataset('mixed', cases, ['EqualsExpected'])
    project.write('evals/test_mixed.py', STATUS_SUITE)
    _run(project, 'evals').assert_outcomes(passed=1, failed=3)
    statuses = {c['case']: c['status'] for c in project.report()['cases']}
    assert statuses == {'ok': 'passed', 'wrong': 'failed', 'boom': 'error', 'hang': 'error'}
    roots = {(r.attributes or {})['case']: r for r in _roots(_spans(capfire.exporter))}
    assert {case.split('[')[1][:-1]: (r.attributes or {}).get('evaltrace.status') for case, r in roots.items()} == (
        statuses
    )
    ids = {c['case']: c['trace_id'] for c in project.report()['cases']}
    assert {case.split('[')[1][:-1]: f'{r.context.trace_id:032x}' for case, r in roots.items()} == ids  # pyright: ignore[reportOptionalMemberAccess]


def test_root_span_usage_equals_the_sum_of_model_request_spans(
    project: EvalProject, capfire: CaptureLogfire, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(concurrency=3))
    _run(project, 'evals').assert_outcomes(passed=3)

    spans = _spans(capfire.exporter)
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for s in spans:
        u = usage_of_span(s.attributes or {})
        if u is not None:
            acc = sums[s.context.trace_id]  # pyright: ignore[reportOptionalMemberAccess]
            acc[0] += u.requests
            acc[1] += u.input_tokens
            acc[2] += u.output_tokens
            acc[3] += u.cost_usd
    roots = _roots(spans)
    assert len(roots) == 3
    for root in roots:
        attrs = root.attributes or {}
        expected = sums[root.context.trace_id]  # pyright: ignore[reportOptionalMemberAccess]
        assert expected[0] == 2  # two agent runs, one request each
        assert attrs['evaltrace.task_usage.requests'] == expected[0]
        assert attrs['evaltrace.task_usage.input_tokens'] == expected[1] == 200
        assert attrs['evaltrace.task_usage.output_tokens'] == expected[2] == 40
        assert attrs['evaltrace.task_usage.cost_usd'] == pytest.approx(expected[3])
        assert expected[3] > 0  # priced by genai-prices as gpt-4o-mini
        assert attrs['evaltrace.judge_usage.requests'] == 0
    cases = project.report()['cases']
    assert all(c['task_usage']['input_tokens'] == 200 for c in cases)


JUDGED_SUITE = """
import evaltrace
from pydantic_ai import Agent
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import LLMJudge
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.usage import RequestUsage
from helpers_models import priced_model

def grade(messages, info):
    return ModelResponse(
        parts=[TextPart('{"reason": "fine", "pass": true, "score": 1.0}')],
        usage=RequestUsage(input_tokens=1000, output_tokens=7),
        model_name='gpt-4o',
        provider_name='openai',
    )

judge_model = FunctionModel(grade, model_name='gpt-4o')
dataset = Dataset(
    name='judged',
    cases=[Case(name='q1', inputs='what is up'), Case(name='q2', inputs='how are you')],
    evaluators=[LLMJudge(rubric='answers politely', model=judge_model)],
)
agent = Agent(priced_model(input_tokens=50, output_tokens=5))

@evaltrace.suite(dataset)
async def test_judged(inputs: str) -> str:
    return (await agent.run(inputs)).output
"""


def test_judge_usage_is_kept_apart_from_task_usage(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.write('evals/test_judged.py', JUDGED_SUITE)
    _run(project, 'evals').assert_outcomes(passed=2)
    cases = project.cases()
    for name in ('q1', 'q2'):
        task, judge = cases[name]['task_usage'], cases[name]['judge_usage']
        assert (task['requests'], task['input_tokens'], task['output_tokens']) == (1, 50, 5)
        assert judge['requests'] >= 1
        assert judge['input_tokens'] == 1000 * judge['requests']
        assert judge['output_tokens'] == 7 * judge['requests']
        assert judge['cost_usd'] > task['cost_usd'] > 0
    roots = _roots(_spans(capfire.exporter))
    assert {r.attributes['evaltrace.judge_usage.input_tokens'] for r in roots} == {1000}  # pyright: ignore[reportOptionalSubscript]


def test_cases_of_a_suite_run_concurrently(project: EvalProject, capfire: CaptureLogfire, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(8), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(concurrency=4))
    _run(project, 'evals').assert_outcomes(passed=8)
    roots = sorted(_roots(_spans(capfire.exporter)), key=lambda s: s.start_time or 0)
    assert len(roots) == 8

    def max_overlap(spans: list[ReadableSpan]) -> int:
        events = sorted([(s.start_time or 0, 1) for s in spans] + [(s.end_time or 0, -1) for s in spans])
        live = best = 0
        for _, delta in events:
            live += delta
            best = max(best, live)
        return best

    assert max_overlap(roots) == 4


def test_max_concurrency_one_runs_cases_one_after_another(
    project: EvalProject, capfire: CaptureLogfire, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(concurrency=1))
    _run(project, 'evals').assert_outcomes(passed=3)
    roots = sorted(_roots(_spans(capfire.exporter)), key=lambda s: s.start_time or 0)
    for earlier, later in itertools.pairwise(roots):
        assert (earlier.end_time or 0) <= (later.start_time or 0)


def test_eval_traces_are_never_sampled_out(project: EvalProject, upper_cases: Any) -> None:
    exporter = TestExporter()
    logfire.configure(
        send_to_logfire=False,
        console=False,
        additional_span_processors=[SimpleSpanProcessor(exporter)],
        sampling=logfire.SamplingOptions(head=0.0),
    )
    with logfire.span('an ordinary span, sampled out'):
        pass
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(concurrency=3))
    _run(project, 'evals').assert_outcomes(passed=3)
    spans = _spans(exporter)
    assert not [s for s in spans if s.name == 'an ordinary span, sampled out']
    roots = _roots(spans)
    assert len(roots) == 3
    for root in roots:
        in_trace = [s for s in spans if s.context.trace_id == root.context.trace_id]  # pyright: ignore[reportOptionalMemberAccess]
        assert sum(s.name == 'chat gpt-4o-mini' for s in in_trace) == 2
    # The suite run's experiment (Logfire's Evals tab) is kept too, with a case span for each case.
    [experiment] = [s for s in spans if (s.attributes or {}).get('gen_ai.operation.name') == 'experiment']
    assert experiment.parent is None
    under = [s for s in spans if s.parent is not None and s.parent.span_id == experiment.context.span_id]  # pyright: ignore[reportOptionalMemberAccess]
    assert len(under) == 3


def test_a_batch_runs_with_the_prior_heap_frozen_and_unfreezes_it(project: EvalProject) -> None:
    """The heap alive before a batch is out of the collector's passes while it runs, and only then (see _run)."""
    project.dataset('frozen', [{'name': 'c0', 'inputs': 'x', 'expected_output': True}], ['EqualsExpected'])
    project.write(
        'evals/test_frozen.py',
        """
        import gc
        import evaltrace

        @evaltrace.suite('datasets/frozen.yaml')
        def test_frozen(inputs: str) -> bool:
            return gc.get_freeze_count() > 0
        """,
    )
    import gc

    assert gc.get_freeze_count() == 0
    _run(project, 'evals').assert_outcomes(passed=1)
    assert gc.get_freeze_count() == 0
