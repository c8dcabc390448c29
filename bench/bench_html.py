"""HTML report at scale: size, build time and load time of the page for 2,000 synthetic cases in headless Chromium.

The synthetic run looks like the project's own evals: each case has an agent run with two model requests (growing
message history, tool schemas, system prompt), a tool call, four evaluators and an LLM judge request, about 14
spans; one case in ten fails. The spans go through the path of a run's end (spool file -> `load_spans` -> page), or
with `--from-store` through DuckDB first. The page is then opened from file:// in Debian's headless Chromium (`apt-get install chromium`), with no
network; printed: file size, build time, time until the case list is drawn, time to filter to failures, and time to
open a failed case and draw its waterfall (medians over `--rounds` page loads). By default the page holds every
case's waterfall (`--html-traces all`), not only the failures' as a run's default does.

    uv run python bench/bench_html.py [--cases 2000] [--rounds 3] [--from-store] [--html-traces failures]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evaltrace import Gate
from evaltrace.report.final import build as build_report_of
from evaltrace.report.parts import SuiteInfo
from evaltrace.results.case import CaseResult
from evaltrace.settings.values import HTML_TRACES, HtmlTraces
from evaltrace.store.duckdb import merge_spool
from evaltrace.store.files import RECORD_COLUMNS, spool_dir
from evaltrace.trace.links import case_anchor
from evaltrace.views.html import write_html_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support.chromium import CHROMIUM_ARGS, CHROMIUM_PATH

CHROMIUM = CHROMIUM_PATH
RUN_ID = 'bench-html'
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TOOLS = [
    {
        'name': f'tool_{i}',
        'description': 'Look something up in the knowledge base. ' * 3,
        'parameters_json_schema': {
            'type': 'object',
            'properties': {'query': {'type': 'string', 'description': 'What to look for.'}},
            'required': ['query'],
        },
    }
    for i in range(4)
]
SYSTEM = 'You are a support agent. Classify the ticket, look up orders, draft a short reply. ' * 6


def _iso(us: int) -> str:
    return (T0 + timedelta(microseconds=us)).isoformat()


def _record(
    trace: str,
    span: int,
    parent: int | None,
    name: str,
    message: str,
    start: int,
    dur: int,
    attrs: dict[str, Any],
    scope: str,
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(name for name, _ in RECORD_COLUMNS)
    record.update(
        start_timestamp=_iso(start),
        end_timestamp=_iso(start + dur),
        duration=dur / 1e6,
        trace_id=trace,
        span_id=f'{span:016x}',
        parent_span_id=f'{parent:016x}' if parent is not None else None,
        kind='span',
        level='error' if extra.get('is_exception') else 'info',
        span_name=name,
        message=message,
        attributes=attrs,
        tags=[],
        is_exception=False,
        otel_status_code='UNSET',
        otel_scope_name=scope,
        service_name='evals',
        run_id=RUN_ID,
    )
    record.update(extra)
    return record


def _case(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    trace = f'{i + 1:032x}'
    failed = i % 10 == 3
    nodeid = f'evals/test_support_{i % 4}.py::test_support[case_{i:04d}]'
    base = i * 10_000_000
    question = f'Ticket {i}: my order ORD-{1000 + i} has not arrived; it was due last week. ' * 2
    reply = f'Hi, thanks for writing. Order ORD-{1000 + i} left our warehouse and is on its way. ' * 3
    call = {
        'role': 'assistant',
        'parts': [{'type': 'tool_call', 'name': 'tool_1', 'arguments': {'query': f'ORD-{1000 + i}'}}],
    }
    result = {'role': 'user', 'parts': [{'type': 'tool_call_response', 'name': 'tool_1', 'result': reply}]}
    user = {'role': 'user', 'parts': [{'type': 'text', 'content': question}]}
    answer = {'role': 'assistant', 'parts': [{'type': 'text', 'content': reply}]}

    def chat(tin: int, tout: int, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
        return {
            'gen_ai.operation.name': 'chat',
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.usage.input_tokens': tin,
            'gen_ai.usage.output_tokens': tout,
            'operation.cost': (tin * 0.15 + tout * 0.6) / 1e6,
            'model_request_parameters': {'function_tools': TOOLS},
            'gen_ai.system_instructions': [{'type': 'text', 'content': SYSTEM}],
            'gen_ai.input.messages': inputs,
            'gen_ai.output.messages': outputs,
        }

    records = [
        _record(
            trace,
            2,
            None,
            'evaluate {name}',
            f'evaluate test_support[case_{i:04d}]',
            base + 100,
            2_390_000,
            {'name': 'test_support', 'nodeid': nodeid, 'evaltrace.case': True},
            'pydantic-evals',
        ),
        _record(
            trace,
            3,
            2,
            'case: {case_name}',
            f'case: case_{i:04d}',
            base + 200,
            2_380_000,
            {
                'inputs': {'message': question},
                'output': {'reply': reply},
                'assertions': {'EqualsExpected': {'value': not failed}},
            },
            'pydantic-evals',
        ),
        _record(
            trace,
            4,
            3,
            'execute {task}',
            'execute test_support',
            base + 300,
            1_900_000,
            {'task': 'test_support'},
            'pydantic-evals',
        ),
        _record(
            trace,
            5,
            4,
            'invoke_agent support',
            'support run',
            base + 400,
            1_890_000,
            {'gen_ai.operation.name': 'invoke_agent', 'final_result': {'reply': reply}},
            'pydantic-ai',
        ),
        _record(
            trace,
            6,
            5,
            'chat gpt-4o-mini',
            'chat gpt-4o-mini',
            base + 500,
            800_000,
            chat(900, 40, [user], [call]),
            'pydantic-ai',
        ),
        _record(
            trace,
            7,
            5,
            'execute_tool tool_1',
            'running tool: tool_1',
            base + 810_000,
            120_000,
            {
                'gen_ai.operation.name': 'execute_tool',
                'gen_ai.tool.name': 'tool_1',
                'gen_ai.tool.call.arguments': {'query': f'ORD-{1000 + i}'},
                'gen_ai.tool.call.result': reply,
            },
            'pydantic-ai',
            **(
                {
                    'is_exception': True,
                    'exception_type': 'TimeoutError',
                    'exception_message': 'order service did not answer',
                    'exception_stacktrace': 'Traceback (most recent call last):\n  ...\nTimeoutError: order service did not answer',
                }
                if failed
                else {}
            ),
        ),
        _record(
            trace,
            8,
            5,
            'chat gpt-4o-mini',
            'chat gpt-4o-mini',
            base + 940_000,
            940_000,
            chat(1300, 120, [user, call, result], [answer]),
            'pydantic-ai',
        ),
    ]
    for k, name in enumerate(('EqualsExpected', 'IsInstance', 'OrderLookedUp', 'LLMJudge')):
        start = base + 1_910_000 + k * 1000
        records.append(
            _record(
                trace,
                9 + k,
                3,
                'evaluator: {evaluator_name}',
                f'Calling evaluator: {name}',
                start,
                500 if k < 3 else 450_000,
                {'evaluator_name': name},
                'pydantic-evals',
            )
        )
    records.append(
        _record(
            trace,
            13,
            12,
            'invoke_agent judge',
            'judge run',
            base + 1_914_000,
            440_000,
            {'gen_ai.operation.name': 'invoke_agent'},
            'pydantic-ai',
        )
    )
    judge_in = {
        'role': 'user',
        'parts': [{'type': 'text', 'content': f'<Output>{reply}</Output><Rubric>Polite</Rubric>'}],
    }
    judge_out = {'role': 'assistant', 'parts': [{'type': 'text', 'content': '{"pass": true}'}]}
    records.append(
        _record(
            trace,
            14,
            13,
            'chat gpt-4o-mini',
            'chat gpt-4o-mini',
            base + 1_915_000,
            430_000,
            chat(400, 12, [judge_in], [judge_out]),
            'pydantic-ai',
        )
    )
    usage = {'requests': 2, 'input_tokens': 2200, 'output_tokens': 160, 'cost_usd': 0.000426}
    case = {
        'suite': nodeid.split('[')[0],
        'case': f'case_{i:04d}',
        'nodeid': nodeid,
        'status': 'failed' if failed else 'passed',
        'assertions': {'EqualsExpected': {'value': not failed, 'reason': 'expected a refund' if failed else None}},
        'scores': {'LLMJudge': {'value': 0.25 if failed else 1.0, 'reason': None}},
        'labels': {},
        'failures': ['assertion EqualsExpected is False: expected a refund'] if failed else [],
        'duration_s': 2.4 + (i % 7) / 10,
        'trace_id': trace,
        'span_id': f'{1:016x}',
        'trace_url': None,
        'task_usage': usage,
        'judge_usage': {'requests': 1, 'input_tokens': 400 + i % 50, 'output_tokens': 12, 'cost_usd': 0.0000672},
        'inputs': {'message': question},
        'expected_output': None,
        'output': {'reply': reply},
    }
    return case, records


def build(
    directory: Path, n: int, from_store: bool = False, html_traces: HtmlTraces = 'all'
) -> tuple[Path, float, float]:
    """Write the synthetic spool and report, then the page; returns its path, store and page build seconds.

    As at the end of a run, the page reads the run's spans from its spool; with `from_store`, the spool is first
    merged into DuckDB and the page reads them from there (as for an older run's report).
    """
    store = directory / 'traces.duckdb'
    spool = spool_dir(store)
    spool.mkdir(parents=True, exist_ok=True)
    cases: list[dict[str, Any]] = []
    t = time.perf_counter()
    with (spool / f'{RUN_ID}-main-1.jsonl').open('w', encoding='utf-8') as f:
        for i in range(n):
            case, records = _case(i)
            cases.append(case)
            f.writelines(json.dumps(r) + '\n' for r in records)
    if from_store:
        merge_spool(store, keep_runs=None)
    store_s = time.perf_counter() - t
    suites = sorted({c['suite'] for c in cases})
    # A real report of these cases (stats, gates, verdict), as a run's end builds it.
    report = build_report_of(
        run_id=RUN_ID,
        started_at=T0.isoformat(),
        finished_at=T0.isoformat(),
        complete=True,
        suites=[SuiteInfo(s, s.split('::')[-1], 'support', gate=Gate(min_pass_rate=0.8)) for s in suites],
        cases=[CaseResult.from_dict(c) for c in cases],
        session_gate=None,
    ).to_json()
    page = directory / 'report.html'
    t = time.perf_counter()
    write_html_report(page, report, store_path=store, html_traces=html_traces)
    return page, store_s, time.perf_counter() - t


def measure(page: Path, failed_anchor: str, rounds: int, n_cases: int) -> dict[str, list[float]]:
    """Open the page `rounds` times in headless Chromium; the timings, in ms, of each round."""
    from playwright.sync_api import sync_playwright

    timings: dict[str, list[float]] = {'ready': [], 'filter': [], 'filter_js': [], 'open': [], 'open_js': []}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, offline=True
        )
        try:
            for _ in range(rounds):
                tab = context.new_page()
                tab.goto(page.as_uri(), wait_until='load')
                tab.wait_for_function('window.__evaltraceReady === true', timeout=60_000)
                timings['ready'].append(float(tab.evaluate('window.__evaltraceReadyAt')))
                t = tab.evaluate('performance.now()')
                tab.check('#et-failures')
                tab.wait_for_function(f'Number(document.body.dataset.shown) < {n_cases}')
                timings['filter'].append(float(tab.evaluate('performance.now()')) - t)
                timings['filter_js'].append(float(tab.evaluate('window.__evaltraceRenderMs')))
                t = tab.evaluate('performance.now()')
                tab.click(f'#{failed_anchor}')
                tab.wait_for_selector('.waterfall .wf-row')
                timings['open'].append(float(tab.evaluate('performance.now()')) - t)
                timings['open_js'].append(float(tab.evaluate('window.__evaltraceDetailMs')))
                tab.close()
        finally:
            context.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cases', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--from-store', action='store_true', help='read the spans from DuckDB, not the spool')
    parser.add_argument(
        '--html-traces', choices=HTML_TRACES, default='all', help="which cases' waterfalls the page holds (default all)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page, store_s, build_s = build(Path(tmp), args.cases, args.from_store, args.html_traces)
        size = page.stat().st_size
        print(f'cases: {args.cases:,}  spans: {args.cases * 14:,}')
        print(
            f'spool written in {store_s:.2f} s; page built in {build_s:.2f} s '
            f'(spans read from the {"store" if args.from_store else "spool"}, compacted, gzipped)'
        )
        print(f'page size: {size / 1e6:.1f} MB ({size / args.cases / 1e3:.1f} kB per case)')
        if not Path(CHROMIUM).exists():
            print(f'no {CHROMIUM}: load time not measured (apt-get install chromium)', file=sys.stderr)
            return
        failed = case_anchor('evals/test_support_3.py::test_support[case_0003]')
        timings = measure(page, failed, args.rounds, args.cases)
        print(f'headless Chromium, median of {args.rounds} loads from file://:')
        print(f'  load to case list drawn: {statistics.median(timings["ready"]):.0f} ms')
        print(
            f'  filter to failures:      {statistics.median(timings["filter"]):.0f} ms end to end '
            f'(click to rows drawn, through Playwright); {statistics.median(timings["filter_js"]):.0f} ms in the page'
        )
        print(
            f'  open a case (waterfall): {statistics.median(timings["open"]):.0f} ms end to end; '
            f'{statistics.median(timings["open_js"]):.0f} ms in the page (inflate its chunk, parse it, draw its spans)'
        )


if __name__ == '__main__':
    main()
