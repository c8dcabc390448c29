"""The local trace store: columns, Logfire's example queries, crash recovery, retention, concurrent writers, secrets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from evaltrace.cli.sql import query_store
from evaltrace.safety.scrub import SecretScrubber
from evaltrace.store.duckdb import StoreError, merge_spool, open_store
from evaltrace.store.files import RECORD_COLUMNS, spool_dir
from tests.support.spool_recorder import Recorder, spawn_writer

# The three queries of the seed's "Querying Data with SQL" section, verbatim.
AGENT_PERFORMANCE = """
SELECT
    span_name,
    COUNT(*) as runs,
    AVG(duration) as avg_duration_ms,
    AVG(CAST(attributes->>'gen_ai.usage.input_tokens' AS INT)) as avg_input_tokens,
    AVG(CAST(attributes->>'gen_ai.usage.output_tokens' AS INT)) as avg_output_tokens
FROM records
WHERE otel_scope_name = 'pydantic-ai'
  AND span_name = 'agent run'
  AND start_timestamp > NOW() - INTERVAL '24 hours'
GROUP BY span_name
"""
SLOWEST_TOOLS = """
SELECT
    message,
    duration,
    start_timestamp,
    attributes->>'tool_arguments' as args
FROM records
WHERE span_name LIKE 'running tool%'
ORDER BY duration DESC
LIMIT 20
"""
ERROR_RATE = """
SELECT
    attributes->>'gen_ai.request.model' as model,
    COUNT(*) as total,
    SUM(CASE WHEN is_exception THEN 1 ELSE 0 END) as errors,
    ROUND(100.0 * SUM(CASE WHEN is_exception THEN 1 ELSE 0 END) / COUNT(*), 2) as error_pct
FROM records
WHERE otel_scope_name = 'pydantic-ai'
  AND start_timestamp > NOW() - INTERVAL '7 days'
GROUP BY model
ORDER BY error_pct DESC
"""
SEED = Path(__file__).resolve().parents[3] / 'shared' / 'seeds' / '002_a2802b48614daa5c.txt'


def weather_agent(recorder: Recorder, *, version: int | None = None) -> Agent[None, str]:
    """An agent on a FunctionModel: one tool call (10 in / 5 out tokens), then an answer (20 in / 7 out)."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(
                parts=[ToolCallPart('get_weather', {'city': 'Paris'})],
                usage=RequestUsage(input_tokens=10, output_tokens=5),
            )
        return ModelResponse(parts=[TextPart('sunny')], usage=RequestUsage(input_tokens=20, output_tokens=7))

    agent = Agent(FunctionModel(respond, model_name='fn-model'))

    @agent.tool_plain
    def get_weather(city: str) -> str:
        return f'sunny in {city}'

    if version is None:
        recorder.logfire.instrument_pydantic_ai(agent)
    else:
        recorder.logfire.instrument_pydantic_ai(agent, version=version)  # type: ignore[arg-type]
    return agent


def rows(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    relation = con.execute(query, params or [])
    names = [d[0] for d in relation.description or []]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def sql_rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    """Rows of a query run as `evaltrace sql` runs it."""
    result = query_store(con, query)
    assert result is not None
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def ns(dt: datetime) -> int:
    return int(dt.timestamp() * 1e9)


def test_columns_are_filled_like_logfire(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    rec = recorder_factory('run-cols')
    agent = weather_agent(rec)
    lf = rec.logfire
    with lf.span('case {name}', name='paris', _tags=['evaltrace']):
        asyncio.run(agent.run('weather?'))
        with pytest.raises(ValueError, match='bad input'), lf.span('failing step'):
            raise ValueError('bad input')
        lf.warn('beware {thing}', thing='rain')
    rec.flush()

    con = open_store(store_path)
    assert [c for c, _ in RECORD_COLUMNS][:20] == [
        'start_timestamp', 'end_timestamp', 'duration', 'trace_id', 'span_id', 'parent_span_id', 'kind', 'level',
        'span_name', 'message', 'attributes', 'tags', 'is_exception', 'exception_type', 'exception_message',
        'exception_stacktrace', 'otel_status_code', 'otel_scope_name', 'service_name', 'deployment_environment',
    ]  # fmt: skip
    records = rows(
        con,
        'SELECT * EXCLUDE (start_timestamp, end_timestamp), CAST(level AS VARCHAR) AS level_name, CAST(attributes AS VARCHAR) AS attrs, '
        'epoch_us(end_timestamp) - epoch_us(start_timestamp) AS span_us FROM records ORDER BY start_timestamp',
    )
    by_message = {r['message']: r for r in records}
    assert set(by_message) == {
        'case paris', 'agent run', 'chat fn-model', 'running tool: get_weather', 'failing step', 'beware rain',
    }  # fmt: skip
    assert len(records) == 7  # two model requests share a message

    root = by_message['case paris']
    assert root['span_name'] == 'case {name}'  # the template, as in Logfire
    assert root['parent_span_id'] is None
    assert root['tags'] == ['evaltrace']
    assert root['kind'] == 'span'
    assert root['level_name'] == 'info'
    root_attributes = json.loads(root['attrs'])
    assert root_attributes['name'] == 'paris'
    # logfire's own keys became columns (message, span_name, level, tags, kind), as in Logfire.
    assert not {'logfire.msg', 'logfire.msg_template', 'logfire.tags', 'logfire.span_type'} & set(root_attributes)
    assert root['otel_scope_name'] == 'logfire'
    assert root['service_name'] == 'store-tests'
    assert root['deployment_environment'] == 'testing'
    assert root['run_id'] == 'run-cols'
    assert root['is_exception'] is False
    assert root['otel_status_code'] == 'UNSET'
    assert {r['trace_id'] for r in records} == {root['trace_id']}
    assert len(root['trace_id']) == 32
    assert len(root['span_id']) == 16

    for r in records:
        assert r['duration'] == pytest.approx(r['span_us'] / 1e6, abs=2e-6)  # seconds, as in Logfire

    agent_run = by_message['agent run']
    assert agent_run['span_name'] == 'invoke_agent agent'
    assert agent_run['otel_scope_name'] == 'pydantic-ai'
    assert agent_run['parent_span_id'] == root['span_id']

    chats = [r for r in records if r['message'] == 'chat fn-model']
    assert [json.loads(c['attrs'])['gen_ai.usage.input_tokens'] for c in chats] == [10, 20]
    assert all(c['parent_span_id'] == agent_run['span_id'] for c in chats)
    # JSON-string attributes that logfire marks as objects/arrays are stored as JSON, as Logfire's backend does.
    first_input = con.execute(
        "SELECT attributes->'gen_ai.input.messages'->0->>'role' FROM records WHERE span_id = ?", [chats[0]['span_id']]
    ).fetchall()
    assert first_input == [('user',)]

    tool = by_message['running tool: get_weather']
    assert json.loads(tool['attrs'])['gen_ai.tool.call.arguments'] == {'city': 'Paris'}

    failing = by_message['failing step']
    assert failing['is_exception'] is True
    assert failing['exception_type'] == 'ValueError'
    assert failing['exception_message'] == 'bad input'
    assert 'raise ValueError' in failing['exception_stacktrace']
    assert failing['level_name'] == 'error'
    assert failing['otel_status_code'] == 'ERROR'

    log = by_message['beware rain']
    assert log['kind'] == 'log'
    assert log['level_name'] == 'warn'
    assert log['span_name'] == 'beware {thing}'
    assert log['duration'] == 0
    # `level` compares with level names by severity, as in Logfire (`evaltrace sql` casts the literal).
    result = query_store(con, "SELECT count(*) FROM records WHERE level >= 'warn'")
    assert result is not None
    assert result.rows == [(2,)]

    runs = rows(con, 'SELECT run_id, records, traces, errors FROM runs')
    assert runs == [{'run_id': 'run-cols', 'records': 7, 'traces': 1, 'errors': 1}]
    con.close()


def test_seed_queries_run_unchanged_and_give_logfire_numbers(
    recorder_factory: Callable[..., Recorder], store_path: Path
) -> None:
    if SEED.exists():  # keep the copies above honest
        seed = ' '.join(SEED.read_text().split())
        for query in (AGENT_PERFORMANCE, SLOWEST_TOOLS, ERROR_RATE):
            assert ' '.join(query.split()) in seed

    rec = recorder_factory('run-seed')
    tracer = rec.tracer('pydantic-ai')
    now = datetime.now(UTC)

    def span(name: str, start: datetime, seconds: float, error: bool = False, **attributes: Any) -> None:
        s = tracer.start_span(name, start_time=ns(start), attributes=attributes)
        if error:
            s.record_exception(RuntimeError('model failed'))
        s.end(end_time=ns(start + timedelta(seconds=seconds)))

    # Agent runs: three in the last day, one older that the 24-hour window excludes.
    for i, (ago, seconds, tokens_in, tokens_out) in enumerate(
        [(1, 1.0, 100, 10), (2, 2.0, 200, 20), (3, 3.0, 300, 30), (30, 9.0, 900, 90)]
    ):
        span(
            'agent run', now - timedelta(hours=ago), seconds,
            **{'gen_ai.usage.input_tokens': tokens_in, 'gen_ai.usage.output_tokens': tokens_out, 'i': i},
        )  # fmt: skip
    for seconds, city in [(0.5, 'Paris'), (1.5, 'Rome'), (0.25, 'Oslo')]:
        span('running tool', now - timedelta(minutes=5), seconds, tool_arguments=json.dumps({'city': city}))
    # Model requests: gpt-a 1 of 4 failed, gpt-b 2 of 2; one gpt-a request is 10 days old (outside 7 days).
    requests = [
        ('gpt-a', True, 0), ('gpt-a', False, 0), ('gpt-a', False, 1), ('gpt-a', False, 2),
        ('gpt-b', True, 0), ('gpt-b', True, 3), ('gpt-a', True, 10),
    ]  # fmt: skip
    for model, error, days in requests:
        span(f'chat {model}', now - timedelta(days=days, minutes=1), 0.1, error, **{'gen_ai.request.model': model})
    rec.flush()

    con = open_store(store_path)
    performance = sql_rows(con, AGENT_PERFORMANCE)
    assert performance == [
        {
            'span_name': 'agent run', 'runs': 3, 'avg_duration_ms': pytest.approx(2.0),
            'avg_input_tokens': pytest.approx(200.0), 'avg_output_tokens': pytest.approx(20.0),
        }
    ]  # fmt: skip

    tools = sql_rows(con, SLOWEST_TOOLS)
    assert [(t['message'], t['duration'], json.loads(t['args'])) for t in tools] == [
        ('running tool', pytest.approx(1.5), {'city': 'Rome'}),
        ('running tool', pytest.approx(0.5), {'city': 'Paris'}),
        ('running tool', pytest.approx(0.25), {'city': 'Oslo'}),
    ]
    assert all(t['start_timestamp'].endswith('+00') for t in tools)  # printed in UTC

    error_rate = sql_rows(con, ERROR_RATE)
    assert error_rate[:2] == [
        {'model': 'gpt-b', 'total': 2, 'errors': 2, 'error_pct': 100.0},
        {'model': 'gpt-a', 'total': 4, 'errors': 1, 'error_pct': 25.0},
    ]
    # The 4 agent runs (all within 7 days) and 3 tool calls carry no model: their group is NULL, without errors.
    assert error_rate[2] == {'model': None, 'total': 7, 'errors': 0, 'error_pct': 0.0}
    con.close()


@pytest.mark.filterwarnings('ignore:Instrumentation format versions 2')
def test_seed_queries_on_a_real_agent_run(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    # The seed's span names ('agent run', 'running tool') and `tool_arguments` are pydantic-ai's instrumentation
    # version 2 (deprecated); newer versions name spans 'invoke_agent <agent>' / 'execute_tool <tool>', in Logfire
    # as here, so on their spans the first two queries return no rows there and here alike.
    rec = recorder_factory('run-agent')
    asyncio.run(weather_agent(rec, version=2).run('weather?'))
    rec.flush()
    con = open_store(store_path)
    assert [r['runs'] for r in sql_rows(con, AGENT_PERFORMANCE)] == [1]
    assert [(t['message'], json.loads(t['args'])) for t in sql_rows(con, SLOWEST_TOOLS)] == [
        ('running tool: get_weather', {'city': 'Paris'})
    ]
    # Both rows tie on error_pct, the query's only ORDER BY: their order is DuckDB's to choose (1.1 and 2.0 differ).
    assert sorted(sql_rows(con, ERROR_RATE), key=lambda r: str(r['model'])) == [
        {'model': None, 'total': 2, 'errors': 0, 'error_pct': 0.0},
        {'model': 'fn-model', 'total': 2, 'errors': 0, 'error_pct': 0.0},
    ]
    con.close()


def test_crash_keeps_flushed_spans_and_open_store_recovers(store_path: Path) -> None:
    writer = spawn_writer(store_path, 'run-crash', 'gw0', 250, crash=True)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 1, stderr.decode()
    spool_files = list(spool_dir(store_path).glob('*.jsonl'))
    assert len(spool_files) == 1
    # A batch cut off mid-line by the crash.
    with spool_files[0].open('a') as f:
        f.write('{"start_timestamp":"2025-01-01T00:00:00+00:00","trace_id":"ab')
    assert not store_path.exists()

    con = open_store(store_path)  # merges the orphaned spool before reading
    assert con.execute('SELECT count(*), count(DISTINCT span_id) FROM records').fetchall() == [(250, 250)]
    assert con.execute("SELECT count(*) FROM records WHERE span_name LIKE 'lost%'").fetchall() == [(0,)]
    con.close()
    assert list(spool_dir(store_path).iterdir()) == []
    assert merge_spool(store_path).records == 0  # nothing imported twice


def test_retention_keeps_the_last_n_runs(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(5):
        rec = recorder_factory(f'run-{i}')
        tracer = rec.tracer('retention')
        for j in range(3):
            tracer.start_span(f'span {j}', start_time=ns(start + timedelta(minutes=i))).end()
        rec.flush()
        merge_spool(store_path, keep_runs=None)

    result = merge_spool(store_path, keep_runs=3)
    assert result.pruned_runs == ('run-1', 'run-0')
    con = open_store(store_path, keep_runs=3)
    assert con.execute('SELECT run_id FROM runs ORDER BY started_at').fetchall() == [('run-2',), ('run-3',), ('run-4',)]
    assert con.execute('SELECT run_id, count(*) FROM records GROUP BY run_id ORDER BY run_id').fetchall() == [
        ('run-2', 3),
        ('run-3', 3),
        ('run-4', 3),
    ]
    con.close()


def test_concurrent_writer_processes_lose_nothing(store_path: Path) -> None:
    count = 800
    writers = [spawn_writer(store_path, 'run-xdist', f'gw{i}', count) for i in range(2)]
    merges = 0
    # Merge while they write: claimed files must not lose the batches in flight.
    while any(w.poll() is None for w in writers):
        merge_spool(store_path)
        merges += 1
        time.sleep(0.02)
    for w in writers:
        _, stderr = w.communicate()
        assert w.returncode == 0, stderr.decode()
    merge_spool(store_path)
    con = open_store(store_path)
    assert con.execute(
        "SELECT service_name, count(*), count(DISTINCT span_id), min((attributes->>'i')::INT), max((attributes->>'i')::INT) "
        'FROM records GROUP BY service_name ORDER BY service_name'
    ).fetchall() == [('writer-gw0', count, count, 0, count - 1), ('writer-gw1', count, count, 0, count - 1)]
    con.close()
    assert merges > 1


SECRETS = (
    'sk-proj-Abc123Def456Ghi789Jkl012',
    'Bearer eyJhbGciOiJIUzI1NiJ9.payload123',
    'AIzaSyA1234567890abcdefghijklmnopqrstu',
    'ACME-4242-ZZ',
)


def test_planted_secrets_never_reach_the_store(recorder_factory: Callable[..., Recorder], store_path: Path) -> None:
    rec = recorder_factory('run-secrets', extra_patterns=(r'ACME-\d{4}-[A-Z]{2}',))
    lf = rec.logfire
    openai_key, bearer, google_key, custom = SECRETS
    with lf.span(
        'calling {provider}',
        provider='openai',
        headers={'Authorization': bearer, 'content-type': 'application/json'},
        note=f'the key is {openai_key}',
        ticket=custom,
    ):
        lf.info('retrying with key {key}', key=openai_key)
        # An OTel HTTP span with the header as the httpx instrumentation records it, and a key in the URL.
        http = rec.tracer('opentelemetry.instrumentation.httpx').start_span(
            'POST',
            attributes={
                'http.request.header.authorization': (bearer,),
                'url.full': f'https://generativelanguage.googleapis.com/v1/models?key={google_key}',
            },
        )
        http.end()
        with pytest.raises(RuntimeError), lf.span('provider call'):
            raise RuntimeError(f'Incorrect API key provided: {openai_key}')
    rec.flush()

    spool_bytes = b''.join(p.read_bytes() for p in spool_dir(store_path).glob('*.jsonl'))
    assert b'[Scrubbed' in spool_bytes
    for secret in SECRETS:
        assert secret.encode() not in spool_bytes
        assert secret.split()[-1].encode() not in spool_bytes

    con = open_store(store_path)
    dump = json.dumps(con.sql('SELECT * EXCLUDE (start_timestamp, end_timestamp) FROM records').fetchall(), default=str)
    con.close()
    assert 'application/json' in dump  # harmless values stay
    assert 'Incorrect API key provided: [Scrubbed]' in dump
    for secret in SECRETS:
        assert secret.split()[-1] not in dump
    store_bytes = store_path.read_bytes()
    for secret in SECRETS:
        assert secret.split()[-1].encode() not in store_bytes


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('Authorization: Bearer abc123def456', 'Authorization: [Scrubbed]'),
        ('{"x-api-key": "k-9f8e7d6c5b4a"}', '{"x-api-key": "[Scrubbed]"}'),
        ('curl -H "api_key=12345678abcdef"', 'curl -H "api_key=[Scrubbed]"'),
        ('use sk-ant-api03-abcdefghijklmnop please', 'use [Scrubbed] please'),
        ('token pylf_v1_us_abcdefghijklmnop', 'token [Scrubbed]'),
        ('bearer 0123456789abcdef', 'bearer [Scrubbed]'),
        ('Basic instructions for the bearer of news', 'Basic instructions for the bearer of news'),
        ('the sk-short one and an ordinary sentence', 'the sk-short one and an ordinary sentence'),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert SecretScrubber().scrub_text(text) == expected


def test_scrub_attributes_by_key_and_value() -> None:
    scrubber = SecretScrubber(extra_patterns=(r'internal-\d+',))
    scrubbed = scrubber.scrub_attributes(
        {
            'request': {'headers': {'X-Api-Key': 'abc', 'accept': 'json'}},
            'password': 'hunter2',
            'gen_ai.input.messages': [
                {'role': 'user', 'parts': [{'content': 'host internal-42 key sk-1234567890abcdefgh'}]}
            ],
            'gen_ai.usage.input_tokens': 12,
        }
    )
    assert scrubbed['request']['headers']['accept'] == 'json'
    assert 'abc' not in json.dumps(scrubbed['request'])
    assert 'hunter2' not in json.dumps(scrubbed)
    assert scrubbed['gen_ai.input.messages'][0]['parts'][0]['content'] == 'host [Scrubbed] key [Scrubbed]'
    assert scrubbed['gen_ai.usage.input_tokens'] == 12


def test_bad_scrubbing_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"invalid scrubbing pattern '\(unclosed'"):
        SecretScrubber(extra_patterns=('(unclosed',))


def test_missing_corrupt_and_foreign_stores_raise_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match='no trace store at'):
        open_store(tmp_path / 'missing' / 'traces.duckdb')
    corrupt = tmp_path / 'corrupt.duckdb'
    corrupt.write_bytes(b'this is not a database' * 1000)
    notices: list[str] = []
    open_store(corrupt, on_notice=notices.append).close()  # an unreadable store is rebuilt (from an empty spool)
    assert len(notices) == 1 and 'not a readable trace store' in notices[0] and 'rebuilt' in notices[0]
    assert (tmp_path / 'corrupt.duckdb.corrupt').read_bytes() == b'this is not a database' * 1000
    foreign = tmp_path / 'foreign.duckdb'
    con = duckdb.connect(str(foreign))
    con.execute('CREATE TABLE records (x INTEGER)')
    con.close()
    with pytest.raises(StoreError, match='not an evaltrace trace store'):
        open_store(foreign)
