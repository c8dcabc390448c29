"""Writing the local trace store's spool: each process appends its finished spans, scrubbed, to a JSON-lines file.

Each process (the controller and every xdist worker) writes its own spool file (see `store.files.spool_file`)
through a `SpoolSpanProcessor`, in batches, each flushed to the OS, so a crash keeps what was already written. Each
line is one row of the store's `records` table (Logfire's columns, plus `run_id`).

The HTML report of a run reads its spans straight from the spool (see `store.records`); the DuckDB store (`store.duckdb`)
imports the spool when it is first queried. So a run never pays for DuckDB.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from pydantic_core import to_json

from ..safety.scrub import SecretScrubber
from ..span_attributes import attributes_of
from .files import locked, spool_file

__all__ = (
    'SpoolSpanExporter',
    'SpoolSpanProcessor',
    'span_to_line',
    'spool_span_processor',
)

# Lowest logfire level number of each name, as in `logfire._internal.constants.LEVEL_NUMBERS`.
_LEVEL_FLOORS = ((21, 'fatal'), (17, 'error'), (13, 'warn'), (10, 'notice'), (9, 'info'), (5, 'debug'), (1, 'trace'))

# Logfire attributes that become columns of their own (as in Logfire) instead of staying in `attributes`.
_PROMOTED_ATTRIBUTES = frozenset(
    {
        'logfire.msg',
        'logfire.msg_template',
        'logfire.level_num',
        'logfire.level_name',
        'logfire.span_type',
        'logfire.tags',
        'logfire.json_schema',
        'logfire.pending_parent_id',
    }
)


def _iso(ns: int) -> str:
    # DuckDB keeps microseconds; keep the string exact to that. Spans end within the same few seconds: the date
    # and time of day of a second are formatted once.
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return f'{_iso_second(seconds)}.{micros:06d}+00:00'


@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).strftime('%Y-%m-%dT%H:%M:%S')


def _level_name(level_num: object, status: StatusCode) -> str:
    if isinstance(level_num, int) and not isinstance(level_num, bool):
        for floor, name in _LEVEL_FLOORS:
            if level_num >= floor:
                return name
        return 'trace'
    # Same default as logfire's span processor: spans with an error status are errors.
    return 'error' if status is StatusCode.ERROR else 'info'


@functools.lru_cache(maxsize=512)
def _parsed_schema_properties(raw: str) -> dict[str, Any]:
    # Cached: a span kind's schema text repeats on every case. The result is shared, and only ever read.
    try:
        schema = json.loads(raw)
    except ValueError:
        return {}
    properties = cast('dict[str, Any]', schema).get('properties') if isinstance(schema, dict) else None
    return cast('dict[str, Any]', properties) if isinstance(properties, dict) else {}


def span_to_line(span: ReadableSpan, run_id: str, scrubber: SecretScrubber) -> str | None:
    """A finished span as one JSON line of the spool (no newline), scrubbed; None for pending spans.

    Each string is scrubbed on its own as the row is built, never the line's JSON scaffolding: the strings of a
    span kind repeat on every case, and the scrubber scrubs a repeated text once (`SecretScrubber.scrub_text`).
    """
    record = _record(span, run_id, scrubber)
    if record is None:
        return None
    line = to_json(record, fallback=str).decode()
    # The columns taken from the resource are the same on every span of a process: scrubbed and encoded once.
    return f'{line[:-1]},{_RESOURCE_COLUMNS.fragment(span.resource, scrubber)}}}'


class _ResourceColumns:
    """The columns a span takes from its resource, as a JSON fragment (`"key":value,...`), scrubbed; built once."""

    def __init__(self) -> None:
        self._last: tuple[Resource, SecretScrubber, str] | None = None

    def fragment(self, resource: Resource, scrubber: SecretScrubber) -> str:
        last = self._last
        if last is None or last[0] is not resource or last[1] is not scrubber:
            attributes = resource.attributes
            pid = attributes.get('process.pid')
            environment = attributes.get('deployment.environment.name', attributes.get('deployment.environment'))
            columns = {
                'service_name': _str_or_none(attributes.get('service.name')),
                'deployment_environment': _str_or_none(environment),
                'otel_resource_attributes': scrubber.scrub_attributes(resource.attributes),  # keys and strings
                'service_version': _str_or_none(attributes.get('service.version')),
                'process_pid': pid if isinstance(pid, int) else None,
            }
            columns = {k: scrubber.scrub_text(v) if isinstance(v, str) else v for k, v in columns.items()}
            last = self._last = (resource, scrubber, to_json(columns, fallback=str).decode()[1:-1])
        return last[2]


_RESOURCE_COLUMNS = _ResourceColumns()


def _record(span: ReadableSpan, run_id: str, scrubber: SecretScrubber) -> dict[str, Any] | None:
    """A finished span as a `records` row (a JSON-ready dict), scrubbed, without the columns from its resource; None
    if pending."""
    text = scrubber.scrub_text
    raw = attributes_of(span)
    context = span.context
    if raw.get('logfire.span_type') == 'pending_span' or context is None or span.start_time is None:
        return None
    end_time = span.end_time if span.end_time is not None else span.start_time
    schema = raw.get('logfire.json_schema')
    # The schema's text is the same on every span of a kind: scrubbed once (see `SecretScrubber.scrub_text`).
    schema_properties = _parsed_schema_properties(text(schema)) if isinstance(schema, str) else {}
    attributes = {k: v for k, v in raw.items() if k not in _PROMOTED_ATTRIBUTES}

    events: list[dict[str, Any]] = []
    exception: dict[str, Any] = {}
    for event in span.events:
        event_attributes = scrubber.scrub_attributes(event.attributes or {})
        events.append({'name': event.name, 'timestamp': _iso(event.timestamp), 'attributes': event_attributes})
        if event.name == 'exception':
            exception = event_attributes  # the last one is the one that ended the span
    status = span.status
    tags = raw.get('logfire.tags')
    scope = span.instrumentation_scope
    parent = span.parent
    return {
        'start_timestamp': _iso(span.start_time),
        'end_timestamp': _iso(end_time),
        'duration': (end_time - span.start_time) / 1e9,
        'trace_id': f'{context.trace_id:032x}',
        'span_id': f'{context.span_id:016x}',
        'parent_span_id': f'{parent.span_id:016x}' if parent is not None else None,
        'kind': 'log' if raw.get('logfire.span_type') == 'log' else 'span',
        'level': _level_name(raw.get('logfire.level_num'), status.status_code),
        'span_name': text(span.name),
        'message': scrubber.scrub_message(str(raw.get('logfire.msg', span.name)), raw.get('logfire.msg_template'), raw),
        'attributes': scrubber.scrub_attributes(attributes, schema_properties),
        'tags': [text(str(t)) for t in cast('Sequence[Any]', tags)] if isinstance(tags, tuple | list) else [],
        'is_exception': bool(exception),
        'exception_type': _str_or_none(exception.get('exception.type')),
        'exception_message': _str_or_none(exception.get('exception.message')),
        'exception_stacktrace': _str_or_none(exception.get('exception.stacktrace')),
        'otel_status_code': status.status_code.name,
        'otel_scope_name': text(scope.name) if scope is not None else None,
        'otel_status_message': text(status.description) if status.description else None,
        'otel_span_kind': span.kind.name,
        'otel_events': events,
        'otel_links': [
            {
                'trace_id': f'{link.context.trace_id:032x}',
                'span_id': f'{link.context.span_id:016x}',
                'attributes': scrubber.scrub_attributes(link.attributes or {}),
            }
            for link in span.links
        ],
        'attributes_json_schema': schema_properties or None,
        'run_id': run_id,
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class SpoolSpanExporter(SpanExporter):
    """Appends finished spans, as scrubbed `records` rows, to one JSON-lines spool file (one per process)."""

    def __init__(self, path: Path, run_id: str, scrubber: SecretScrubber | None = None) -> None:
        """Create the exporter; the file is created on the first batch.

        Args:
            path: The spool file; it must be unique to this process.
            run_id: The run id stored on every record.
            scrubber: Removes secrets; by default one without extra patterns.
        """
        self.path = path
        self.run_id = run_id
        self.scrubber = scrubber or SecretScrubber()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Convert, scrub and append a batch, then flush it to the OS so a crash keeps it."""
        lines: list[str] = []
        for span in spans:
            try:
                line = span_to_line(span, self.run_id, self.scrubber)
            except Exception:  # pragma: no cover - one odd span must not lose the batch
                continue
            if line is not None:
                lines.append(line + '\n')
        if not lines:
            return SpanExportResult.SUCCESS
        try:
            self._append(''.join(lines))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _append(self, data: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            with self.path.open('a', encoding='utf-8') as f, locked(f):
                # A merge may have claimed (renamed) the file between open() and the lock: then write to a new one.
                try:
                    same_file = os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same_file = False
                if same_file:
                    f.write(data)
                    f.flush()
                    return

    def shutdown(self) -> None:
        """Nothing to release: every batch closes its file."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every batch is already flushed."""
        return True


class SpoolSpanProcessor(SpanProcessor):
    """Buffers finished spans and writes them to the spool in batches, on the thread that ends the span.

    No writer thread: on a machine with few cores, a background thread converting spans competes with the cases
    for the GIL and cost more than twice the conversion itself. A batch is written once `max_batch` spans wait,
    or once the oldest has waited `max_delay_s`; `force_flush` (at session end, on Ctrl-C or SIGTERM) writes the
    rest. A SIGKILL loses at most one batch of spans: the cases' results are in the journal regardless.
    """

    def __init__(self, exporter: SpoolSpanExporter, *, max_batch: int = 1024, max_delay_s: float = 1.0) -> None:
        self.exporter = exporter
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self._buffer: list[ReadableSpan] = []
        self._oldest = 0.0
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(span)
            due = len(self._buffer) >= self.max_batch or time.monotonic() - self._oldest >= self.max_delay_s
            batch = self._take() if due else None
        if batch:
            self.exporter.export(batch)

    def _take(self) -> list[ReadableSpan]:
        batch, self._buffer = self._buffer, []
        return batch

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            batch = self._take()
        return not batch or self.exporter.export(batch) is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.force_flush()


def spool_span_processor(
    store_path: Path | str,
    run_id: str,
    *,
    worker: str | None = None,
    extra_patterns: Sequence[str] = (),
    schedule_delay_millis: float = 1000,
) -> SpoolSpanProcessor:
    """The span processor that feeds the local store from this process.

    Add it to the tracer provider (e.g. `logfire.configure(additional_span_processors=[...])`) in every process
    that produces spans, controller and xdist workers alike, with the same `run_id`. Call its `force_flush()` (or
    `shutdown()`) before the spool is read, so that the last batch is on disk.

    Args:
        store_path: The DuckDB file; spool files go to `spool/` beside it.
        run_id: Shared by all processes of one run.
        worker: Names the spool file; default `$PYTEST_XDIST_WORKER` or `main`. The pid is always appended.
        extra_patterns: Regexes of further secrets to scrub (see `SecretScrubber`).
        schedule_delay_millis: Longest time a finished span waits before it is written (checked as spans end).
    """
    worker = worker or os.environ.get('PYTEST_XDIST_WORKER', 'main')
    path = spool_file(store_path, run_id, worker, os.getpid())
    exporter = SpoolSpanExporter(path, run_id, SecretScrubber(extra_patterns))
    return SpoolSpanProcessor(exporter, max_delay_s=schedule_delay_millis / 1000)
