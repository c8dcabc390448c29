"""The spool: one JSON line per span, scrubbed in one pass over the line, written in batches by the ending thread."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from evaltrace.safety.scrub import SecretScrubber, key_patterns, required_literal
from evaltrace.store.files import read_retention, spool_dir, spooled_runs, write_retention
from evaltrace.store.records import read_spool
from evaltrace.store.spool import SpoolSpanExporter, SpoolSpanProcessor, span_to_line


def finished_span(
    attributes: dict[str, Any], name: str = 'step', resource: dict[str, Any] | None = None
) -> ReadableSpan:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {'service.name': 'spool-tests'}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer('t').start_as_current_span(name, attributes=attributes):
        pass
    (span,) = memory.get_finished_spans()
    return span


def test_line_scrubs_secrets_in_strings_and_json_attributes_and_stays_json() -> None:
    span = finished_span(
        {
            'note': 'retry with sk-proj-Abc123Def456Ghi789Jkl012 now',
            'headers': json.dumps({'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload123', 'accept': 'json'}),
            'logfire.json_schema': json.dumps({'type': 'object', 'properties': {'headers': {'type': 'object'}}}),
            'password': 'hunter2-hunter2',
        }
    )
    line = span_to_line(span, 'run-1', SecretScrubber())
    assert line is not None
    record = json.loads(line)
    attributes = record['attributes']
    assert attributes['note'] == 'retry with [Scrubbed] now'
    assert attributes['headers'] == {'Authorization': "[Scrubbed due to 'Auth']", 'accept': 'json'}
    assert attributes['password'].startswith('[Scrubbed')
    for secret in ('sk-proj-Abc123Def456Ghi789Jkl012', 'eyJhbGciOiJIUzI1NiJ9', 'hunter2'):
        assert secret not in line
    assert record['run_id'] == 'run-1'
    assert record['span_name'] == 'step'


# Keys that each match one of logfire's default patterns, of this and later logfire versions. The patterns themselves
# are read from the installed logfire at run time (`key_patterns`), so a new logfire is tested against its own list.
SAMPLE_KEYS = [
    'Password', 'passwd', 'MYSQL_PWD', 'client_secret', 'Authorization', 'aws_credentials', 'private-key', 'X-API-KEY',
    'sessionId', 'Set-Cookie', 'social_security', 'credit card', 'logfire_token', 'pylf_v1_x', 'x_csrf_token',
    'xsrf', 'jwt', 'user_ssn', 'passphrase', 'signing_key', 'hmac-key', 'refresh_token', 'access_token', 'id_token',
    'token', 'pwd',
]  # fmt: skip


def sample_key(pattern: str) -> str:
    """A key that `pattern` matches: from SAMPLE_KEYS, else built around the literal every match contains."""
    literal = required_literal(pattern)
    for key in [*SAMPLE_KEYS, f'x_{literal}_y', f'{literal}']:
        if re.search(pattern, key, re.IGNORECASE):
            return key
    raise AssertionError(f'no sample key for the scrubbing pattern {pattern!r}: add one to SAMPLE_KEYS')


@pytest.mark.parametrize('pattern', key_patterns())
def test_a_sensitive_key_inside_a_json_attribute_is_redacted(pattern: str) -> None:
    """One key per key pattern (logfire's, as installed, and evaltrace's), nested in a JSON attribute: the `in`
    pre-check never lets one through."""
    key = sample_key(pattern)
    scrubber = SecretScrubber()
    assert scrubber._key_triggers is not None  # pyright: ignore[reportPrivateUsage]  # the pre-check is in use
    span = finished_span(
        {
            'payload': json.dumps({'outer': [{key: 'value-to-hide'}]}),
            'logfire.json_schema': json.dumps({'type': 'object', 'properties': {'payload': {'type': 'object'}}}),
        }
    )
    line = span_to_line(span, 'run-1', scrubber)
    assert line is not None and 'value-to-hide' not in line
    assert json.loads(line)['attributes']['payload']['outer'][0][key].startswith('[Scrubbed due to')


def test_resource_columns_are_scrubbed_and_follow_each_spans_resource() -> None:
    """The resource's columns are built once per resource, not once per span: a new resource gets its own."""
    scrubber = SecretScrubber()
    first = finished_span(
        {'n': 1},
        resource={
            'service.name': 'billing',
            'deployment.environment.name': 'ci',
            'service.version': '1.2',
            'process.command_args': ('app', '--api-key=sk-proj-Abc123Def456Ghi789Jkl012'),
            'db.password': 'hunter2-hunter2',
        },
    )
    second = finished_span({'n': 2}, resource={'service.name': 'search'})
    records = [json.loads(span_to_line(span, 'run-1', scrubber) or '') for span in (first, first, second)]
    assert [r['service_name'] for r in records] == ['billing', 'billing', 'search']
    assert records[0]['deployment_environment'] == 'ci' and records[0]['service_version'] == '1.2'
    assert records[2]['deployment_environment'] is None and records[2]['service_version'] is None
    resource = records[0]['otel_resource_attributes']
    assert resource['db.password'].startswith('[Scrubbed due to')
    assert resource['process.command_args'] == ['app', '--api-key=[Scrubbed]']
    assert 'sk-proj' not in json.dumps(records) and 'hunter2' not in json.dumps(records)
    assert [r['attributes']['n'] for r in records] == [1, 1, 2]


def test_a_replacement_that_would_break_the_line_falls_back_to_scrubbing_each_string() -> None:
    # A number under a secret-looking key, and a user pattern that spans a JSON quote: scrubbing the line's text
    # would leave invalid JSON, so the row is built again with each string scrubbed on its own.
    span = finished_span({'access_token': 12345678901, 'plan': 'gold', 'memo': 'ACME-4242-ZZ'})
    line = span_to_line(span, 'run-1', SecretScrubber((r'plan":"gold', r'ACME-\d{4}-[A-Z]{2}')))
    assert line is not None
    record = json.loads(line)  # valid JSON
    assert record['attributes']['memo'] == '[Scrubbed]'
    assert 'ACME-4242-ZZ' not in line


def test_processor_writes_a_batch_when_full_and_the_rest_on_flush(tmp_path: Path) -> None:
    path = tmp_path / 'spool' / 'run-2-main-1.jsonl'
    processor = SpoolSpanProcessor(SpoolSpanExporter(path, 'run-2'), max_batch=3, max_delay_s=3600)
    spans = [finished_span({'i': i}) for i in range(4)]
    for span in spans[:2]:
        processor.on_end(span)
    assert not path.exists()  # waiting for a full batch
    processor.on_end(spans[2])
    assert len(path.read_text().splitlines()) == 3
    processor.on_end(spans[3])
    assert len(path.read_text().splitlines()) == 3
    processor.force_flush()
    assert [r['attributes']['i'] for r in read_spool(tmp_path / 'traces.duckdb', 'run-2')] == [0, 1, 2, 3]


def test_processor_writes_a_span_that_waited_longer_than_the_delay(tmp_path: Path) -> None:
    path = tmp_path / 'spool' / 'run-3-main-1.jsonl'
    processor = SpoolSpanProcessor(SpoolSpanExporter(path, 'run-3'), max_batch=1000, max_delay_s=0)
    processor.on_end(finished_span({'i': 0}))
    assert len(path.read_text().splitlines()) == 1


def test_read_spool_skips_a_line_cut_short_and_lists_waiting_runs(tmp_path: Path) -> None:
    store = tmp_path / 'traces.duckdb'
    directory = spool_dir(store)
    directory.mkdir()
    (directory / '20250101T120000-3f9a1c-main-7.jsonl').write_text('{"span_id": "a"}\n{"span_id": "b"\n')
    (directory / 'abc123-gw0-8.jsonl.0f0f0f.merging').write_text('{"span_id": "c"}\n')
    assert [r['span_id'] for r in read_spool(store, '20250101T120000-3f9a1c')] == ['a']
    assert spooled_runs(store) == {'20250101T120000-3f9a1c', 'abc123'}


def test_read_spool_of_some_traces_reads_only_their_lines(tmp_path: Path) -> None:
    path = tmp_path / 'spool' / 'run-4-main-1.jsonl'
    exporter = SpoolSpanExporter(path, 'run-4')
    spans = [finished_span({'i': i, 'note': f'"trace_id":"{i:032x}"'}) for i in range(3)]
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    wanted = [json.loads(line)['trace_id'] for line in path.read_text().splitlines()][1]
    # A value that looks like another trace's id column does not mislead the filter.
    assert [r['attributes']['i'] for r in read_spool(tmp_path / 'traces.duckdb', 'run-4', trace_ids={wanted})] == [1]
    assert list(read_spool(tmp_path / 'traces.duckdb', 'run-4', trace_ids=set())) == []
    # A line without the column (never written by the spool) is read and left to the caller.
    with path.open('a') as f:
        f.write('{"span_id": "odd"}\n')
    assert [r.get('span_id') for r in read_spool(tmp_path / 'traces.duckdb', 'run-4', trace_ids={'x'})] == ['odd']


def test_retention_is_recorded_for_the_next_merge(tmp_path: Path) -> None:
    store = tmp_path / 'traces.duckdb'
    assert read_retention(store) is None
    write_retention(store, 5)
    assert read_retention(store) == 5
    write_retention(store, 0)  # keep every run
    assert read_retention(store) is None


def test_timestamps_are_iso_to_the_microsecond() -> None:
    """The spool's timestamp text (built from a per-second cache) is the instant `isoformat` gives."""
    import datetime as dt
    import random

    from evaltrace.store.spool import _iso  # pyright: ignore[reportPrivateUsage]

    rng = random.Random(7)
    for ns in [0, 999, 1_000_000_000, 1_795_401_682_549_123_456, *(rng.randrange(0, 4 * 10**18) for _ in range(500))]:
        expected = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
        assert dt.datetime.fromisoformat(_iso(ns)) == expected
    assert _iso(1_795_401_682_549_123_456) == '2026-11-23T02:41:22.549123+00:00'
