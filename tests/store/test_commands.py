"""`evaltrace sql` and `evaltrace show` against a store filled by real spans, and their one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from evaltrace.cli.show import add_show_parser, run_show
from evaltrace.cli.sql import add_sql_parser, run_sql
from evaltrace.store.duckdb import merge_spool, open_store
from tests.support.reports import case
from tests.support.reports import report as report_of
from tests.support.spool_recorder import Recorder

NODEID = 'evals/test_weather.py::test_weather[paris]'


def priced(respond: Callable[[list[ModelMessage]], ModelResponse]) -> FunctionModel:
    """A FunctionModel whose responses genai-prices prices as openai:gpt-4o-mini."""

    def function(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        response = respond(messages)
        response.model_name = 'gpt-4o-mini'
        response.provider_name = 'openai'
        return response

    return FunctionModel(function, model_name='gpt-4o-mini')


@pytest.fixture
def filled(recorder_factory: Callable[..., Recorder], store_path: Path) -> dict[str, Any]:
    """A store with a failed case's trace (agent, tool, error, LLM judge, evaluator results), a passed case, and
    the report that lists them."""
    rec = recorder_factory('run-show')
    lf = rec.logfire

    def task_model(messages: list[ModelMessage]) -> ModelResponse:
        if len(messages) == 1:
            call = ToolCallPart('get_weather', {'city': 'Paris'})
            return ModelResponse(parts=[call], usage=RequestUsage(input_tokens=1000, output_tokens=200))
        answer = 'It is sunny in Paris. ' + 'Very sunny indeed. ' * 20
        return ModelResponse(parts=[TextPart(answer)], usage=RequestUsage(input_tokens=2000, output_tokens=300))

    agent = Agent(priced(task_model), name='weather')

    @agent.tool_plain
    def get_weather(city: str) -> str:
        return f'sunny in {city}'

    judge = Agent(
        priced(
            lambda _: ModelResponse(parts=[TextPart('FAIL')], usage=RequestUsage(input_tokens=500, output_tokens=5))
        ),
        name='judge',
    )
    lf.instrument_pydantic_ai(agent)
    lf.instrument_pydantic_ai(judge)

    with lf.span('evaltrace case {case}', case='paris') as case_span:
        asyncio.run(agent.run('What is the weather in Paris?'))
        with pytest.raises(TimeoutError), lf.span('fetch forecast'):
            raise TimeoutError('forecast service did not answer')
        with lf.span(
            'Calling evaluator: {evaluator_name}', evaluator_name='LLMJudge', _span_name='evaluator: LLMJudge'
        ):
            asyncio.run(judge.run('Is the answer rainy?'))
        case_span.set_attribute(
            'assertions', {'EqualsExpected': {'name': 'EqualsExpected', 'value': False, 'reason': 'expected rainy'}}
        )
        case_span.set_attribute('scores', {'LLMJudge': {'name': 'LLMJudge', 'value': 0.25, 'reason': 'not rainy'}})
    failed_trace = f'{case_span.get_span_context().trace_id:032x}'  # type: ignore[union-attr]
    with lf.span('evaltrace case {case}', case='rome') as passed_span:
        lf.info('nothing to see')
    passed_trace = f'{passed_span.get_span_context().trace_id:032x}'  # type: ignore[union-attr]
    rec.flush()
    merge_spool(store_path)

    report = store_path.parent / 'report.json'
    paris = case('paris', 'failed', suite='weather')
    rome = case('rome', suite='weather')
    paris.nodeid, paris.trace_id = NODEID, failed_trace
    rome.nodeid, rome.trace_id, rome.assertions = NODEID.replace('paris', 'rome'), passed_trace, {}
    report.write_text(json.dumps(report_of([paris, rome])))
    con = open_store(store_path)
    costs = dict(
        con.execute(
            "SELECT CAST(attributes->>'gen_ai.usage.input_tokens' AS INT), CAST(attributes->>'operation.cost' AS DOUBLE) "
            "FROM records WHERE attributes->>'operation.cost' IS NOT NULL"
        ).fetchall()
    )
    con.close()
    return {'store': store_path, 'report': report, 'failed': failed_trace, 'passed': passed_trace, 'costs': costs}


def cost(usd: float) -> str:
    return f'${usd:.{6 if usd >= 0.001 else 8}f}'.rstrip('0').rstrip('.')


def show(filled: dict[str, Any], target: str | None, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_show(target, store_path=filled['store'], report_path=filled['report'], out=out, err=err, **kwargs)
    return status, out.getvalue(), err.getvalue()


def without_durations(text: str) -> str:
    return re.sub(r'  \d+(?:\.\d+)?(?:ms|s)(?=  |\n)', '  <d>', text)


def test_show_prints_the_case_trace_as_a_tree(filled: dict[str, Any]) -> None:
    costs = filled['costs']
    assert set(costs) == {1000, 2000, 500}
    assert all(c > 0 for c in costs.values())  # priced by genai-prices
    task, total = costs[1000] + costs[2000], costs[1000] + costs[2000] + costs[500]

    status, out, err = show(filled, NODEID, max_chars=60)
    assert (status, err) == (0, '')
    assert without_durations(out) == (
        f'{NODEID}  FAILED  trace {filled["failed"]}\n'
        f'evaltrace case paris  <d>  Σ 3 req · 3,500 in / 505 out tokens · {cost(total)}\n'
        '│  ✗ EqualsExpected — expected rainy\n'
        '│  score LLMJudge: 0.25 — not rainy\n'
        f'├─ weather run  <d>  Σ 2 req · 3,000 in / 500 out tokens · {cost(task)}\n'
        f'│  ├─ chat gpt-4o-mini  <d>  1,000 in / 200 out tokens · {cost(costs[1000])}\n'
        '│  │     user: What is the weather in Paris?\n'
        '│  │     assistant: → get_weather({"city": "Paris"})\n'
        '│  ├─ running tool: get_weather  <d>\n'
        '│  │     get_weather({"city": "Paris"}) → sunny in Paris\n'
        f'│  └─ chat gpt-4o-mini  <d>  2,000 in / 300 out tokens · {cost(costs[2000])}\n'
        '│        user: ← get_weather: sunny in Paris\n'
        '│        assistant: It is sunny in Paris. Very sunny indeed. Very su…\n'  # 60 chars
        '├─ fetch forecast  <d>\n'
        '│     ✗ TimeoutError: forecast service did not answer\n'
        f'└─ Calling evaluator: LLMJudge  <d>  Σ 1 req · 500 in / 5 out tokens · {cost(costs[500])}\n'
        f'   └─ judge run  <d>  Σ 1 req · 500 in / 5 out tokens · {cost(costs[500])}\n'
        f'      └─ chat gpt-4o-mini  <d>  500 in / 5 out tokens · {cost(costs[500])}\n'
        '            user: Is the answer rainy?\n'
        '            assistant: FAIL\n'
    )


def test_show_resolves_trace_ids_case_names_and_last_failed(filled: dict[str, Any]) -> None:
    by_nodeid = show(filled, NODEID)
    assert by_nodeid[0] == 0
    assert without_durations(show(filled, 'test_weather[paris]')[1]) == without_durations(by_nodeid[1])
    assert without_durations(show(filled, 'paris')[1]) == without_durations(by_nodeid[1])
    assert without_durations(show(filled, None, last_failed=True)[1]) == without_durations(by_nodeid[1])

    status, out, _ = show(filled, filled['failed'][:12])  # a trace id prefix, no report lookup needed
    assert status == 0
    assert out.startswith(f'trace {filled["failed"]}\nevaltrace case paris')
    # Without the report's evaluator results the span attributes still show them.
    assert '✗ EqualsExpected — expected rainy' in out

    status, out, _ = show(filled, 'rome')
    assert status == 0
    assert without_durations(out) == (
        f'{NODEID.replace("paris", "rome")}  PASSED  trace {filled["passed"]}\n'
        'evaltrace case rome  <d>\n'
        '└─ nothing to see\n'
    )


def test_show_errors_are_one_line(filled: dict[str, Any], tmp_path: Path) -> None:
    cases = [
        ((filled, 'ffffffffffffffffffffffffffffffff'), "no trace 'ffffffffffffffffffffffffffffffff' in "),
        ((filled, 'no-such-case'), f"no case 'no-such-case' in {filled['report']}"),
        ((filled, 'test_weather'), "'test_weather' matches 2 cases"),
        ((filled, None), 'give either a case node id / trace id, or --last-failed'),
        (({**filled, 'report': tmp_path / 'none.json'}, 'paris'), 'no report at'),
        (({**filled, 'store': tmp_path / 'none' / 'traces.duckdb'}, filled['failed']), 'no trace store at'),
    ]
    for (where, target), expected in cases:
        status, out, err = show(where, target)
        assert status == 1
        assert out == ''
        assert err.startswith('evaltrace show: ')
        assert expected in err
        assert err.count('\n') == 1


def test_show_last_failed_reports_a_case_without_trace_and_goes_on(filled: dict[str, Any]) -> None:
    report = json.loads(filled['report'].read_text())
    report['cases'].insert(0, {**report['cases'][0], 'nodeid': 'evals/t.py::t[x]', 'case': 'x', 'trace_id': None})
    filled['report'].write_text(json.dumps(report))
    status, out, err = show(filled, None, last_failed=True)
    assert status == 1
    assert err == 'evaltrace show: case evals/t.py::t[x] has no trace (status failed)\n'
    assert f'{NODEID}  FAILED' in out


def sql(store: Path, query: str, fmt: str = 'table') -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_sql(query, store_path=store, fmt=fmt, out=out, err=err)  # type: ignore[arg-type]
    return status, out.getvalue(), err.getvalue()


def test_sql_formats(filled: dict[str, Any]) -> None:
    query = (
        "SELECT message, CAST(attributes->>'gen_ai.usage.input_tokens' AS INT) AS input_tokens, tags, start_timestamp "
        "FROM records WHERE span_name LIKE 'chat %' ORDER BY input_tokens"
    )
    status, out, err = sql(filled['store'], query)
    assert (status, err) == (0, '')
    lines = out.splitlines()
    assert re.split(r'\s*│\s*', lines[0]) == ['message', 'input_tokens', 'tags', 'start_timestamp']
    assert re.split(r'\s*│\s*', lines[2])[:3] == ['chat gpt-4o-mini', '500', '[]']
    assert lines[-1] == '(3 rows)'

    status, out, _ = sql(filled['store'], query, 'csv')
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[0] == ['message', 'input_tokens', 'tags', 'start_timestamp']
    assert [row[1] for row in parsed[1:]] == ['500', '1000', '2000']
    assert parsed[1][3].endswith('+00')

    status, out, _ = sql(
        filled['store'], query.replace('tags,', "attributes->'gen_ai.output.messages' AS output,"), 'json'
    )
    objects = json.loads(out)
    assert [o['input_tokens'] for o in objects] == [500, 1000, 2000]
    assert objects[0]['output'][0]['parts'][0] == {'type': 'text', 'content': 'FAIL'}


def test_sql_errors_are_one_line(filled: dict[str, Any], tmp_path: Path) -> None:
    corrupt = tmp_path / 'corrupt.duckdb'
    corrupt.write_bytes(b'\x00garbage' * 4096)
    cases = [
        (filled['store'], 'SELEC 1', 'Parser Error: syntax error at or near "SELEC"'),
        (filled['store'], 'SELECT nope FROM records', 'Binder Error: Referenced column "nope" not found'),
        (filled['store'], 'DELETE FROM records', 'read-only'),
        (tmp_path / 'missing' / 'traces.duckdb', 'SELECT 1', 'no trace store at'),
    ]
    for store, query, expected in cases:
        status, out, err = sql(store, query)
        assert status == 1
        assert out == ''
        assert err.startswith('evaltrace sql: ')
        assert expected in err
        assert err.count('\n') == 1
    # An unreadable store is rebuilt from the spool, with one line saying so; the query then runs.
    status, out, err = sql(corrupt, 'SELECT count(*) AS n FROM records', 'csv')
    assert (status, out) == (0, 'n\n0\n')
    assert err.startswith(f'evaltrace: {corrupt} was not a readable trace store') and err.count('\n') == 1
    # The store is untouched by the refused DELETE.
    assert sql(filled['store'], 'SELECT count(*) AS n FROM records', 'csv')[1] == 'n\n11\n'


def test_parsers_register_handlers(filled: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog='evaltrace')
    subparsers = parser.add_subparsers(dest='command', required=True)
    add_sql_parser(subparsers)
    add_show_parser(subparsers)

    args = parser.parse_args(
        ['sql', "SELECT count(*) AS runs FROM runs WHERE run_id = 'run-show'", '--store', str(filled['store']),
         '--format', 'json']
    )  # fmt: skip
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out) == [{'runs': 1}]

    args = parser.parse_args(
        ['show', '--last-failed', '--store', str(filled['store']), '--report', str(filled['report'])]
    )
    assert args.handler(args) == 0
    assert capsys.readouterr().out.startswith(f'{NODEID}  FAILED')
