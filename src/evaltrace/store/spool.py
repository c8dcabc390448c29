"""Writing the local trace store's spool: each process appends its finished spans, scrubbed, to a JSON-lines file.

Each process (the controller and every xdist worker) writes its own spool file (see `store.files.spool_file`)
through a `SpoolSpanProcessor`, in batches, each flushed to the OS, so a crash keeps what was already written. Each
line is one row of the store's `records` table (Logfire's columns, plus `run_id`). A span is kept as plain data
(`RawSpan`) until its line is built, here or in the writer process of `store.spool_writer`.

The HTML report of a run reads its spans straight from the spool (see `store.records`); the DuckDB store (`store.duckdb`)
imports the spool when it is first queried. So a run never pays for DuckDB.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pydantic_core import to_json

from ..safety.scrub import SecretScrubber
from ..span_attributes import attributes_of
from .files import locked

__all__ = (
    'RawSpan',
    'SpoolSpanExporter',
    'SpoolSpanProcessor',
    'SpoolWriter',
    'raw_span',
    'raw_to_line',
    'resource_columns',
    'span_to_line',
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


def _level_name(level_num: object, status_code: str) -> str:
    if isinstance(level_num, int) and not isinstance(level_num, bool):
        for floor, name in _LEVEL_FLOORS:
            if level_num >= floor:
                return name
        return 'trace'
    # Same default as logfire's span processor: spans with an error status are errors.
    return 'error' if status_code == 'ERROR' else 'info'


@functools.lru_cache(maxsize=512)
def _parsed_schema_properties(raw: str) -> dict[str, Any]:
    # Cached: a span kind's schema text repeats on every case. The result is shared, and only ever read.
    try:
        schema = json.loads(raw)
    except ValueError:
        return {}
    properties = cast('dict[str, Any]', schema).get('properties') if isinstance(schema, dict) else None
    return cast('dict[str, Any]', properties) if isinstance(properties, dict) else {}


class RawSpan(NamedTuple):
    """What the spool keeps of a finished span: plain data, so that it can be handed to the writer process."""

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None
    start_time: int
    end_time: int
    attributes: Mapping[str, Any]
    events: tuple[tuple[str, int, Mapping[str, Any]], ...]
    """(name, timestamp, attributes) of each event."""
    links: tuple[tuple[int, int, Mapping[str, Any]], ...]
    """(trace id, span id, attributes) of each link."""
    status_code: str
    """`UNSET`, `OK` or `ERROR`."""
    status_description: str | None
    kind: str
    """The OpenTelemetry span kind's name: `INTERNAL`, `CLIENT`..."""
    scope_name: str | None


def raw_span(span: ReadableSpan) -> RawSpan | None:
    """The finished span as plain data (its attributes are the SDK's own dict, not copied); None for pending spans."""
    raw = attributes_of(span)
    context = span.context
    if raw.get('logfire.span_type') == 'pending_span' or context is None or span.start_time is None:
        return None
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    return RawSpan(
        span.name,
        context.trace_id,
        context.span_id,
        parent.span_id if parent is not None else None,
        span.start_time,
        span.end_time if span.end_time is not None else span.start_time,
        raw,
        tuple((e.name, e.timestamp, dict(e.attributes or {})) for e in span.events) if span.events else (),
        tuple((k.context.trace_id, k.context.span_id, dict(k.attributes or {})) for k in span.links)
        if span.links
        else (),
        status.status_code.name,
        status.description,
        span.kind.name,
        scope.name if scope is not None else None,
    )


def span_to_line(span: ReadableSpan, run_id: str, scrubber: SecretScrubber) -> str | None:
    """A finished span as one JSON line of the spool (no newline), scrubbed; None for pending spans.

    Each string is scrubbed on its own as the row is built, never the line's JSON scaffolding: the strings of a
    span kind repeat on every case, and the scrubber scrubs a repeated text once (`SecretScrubber.scrub_text`).
    """
    raw = raw_span(span)
    if raw is None:
        return None
    return raw_to_line(raw, run_id, scrubber, _RESOURCE_COLUMNS.fragment(span.resource, scrubber))


def raw_to_line(raw: RawSpan, run_id: str, scrubber: SecretScrubber, resource_columns: str) -> str:
    """The spool line of a span kept as plain data; `resource_columns` comes from `resource_columns`."""
    line = to_json(_record(raw, run_id, scrubber), fallback=str).decode()
    # The columns taken from the resource are the same on every span of a process: scrubbed and encoded once.
    return f'{line[:-1]},{resource_columns}}}'


def resource_columns(attributes: Mapping[str, Any], scrubber: SecretScrubber) -> str:
    """The columns a span takes from its resource's attributes, as a scrubbed JSON fragment (`"key":value,...`)."""
    pid = attributes.get('process.pid')
    environment = attributes.get('deployment.environment.name', attributes.get('deployment.environment'))
    columns = {
        'service_name': _str_or_none(attributes.get('service.name')),
        'deployment_environment': _str_or_none(environment),
        'otel_resource_attributes': scrubber.scrub_attributes(attributes),  # keys and strings
        'service_version': _str_or_none(attributes.get('service.version')),
        'process_pid': pid if isinstance(pid, int) else None,
    }
    columns = {k: scrubber.scrub_text(v) if isinstance(v, str) else v for k, v in columns.items()}
    return to_json(columns, fallback=str).decode()[1:-1]


class _ResourceColumns:
    """`resource_columns` of the last resource seen: every span of a process has the same one."""

    def __init__(self) -> None:
        self._last: tuple[Resource, SecretScrubber, str] | None = None

    def fragment(self, resource: Resource, scrubber: SecretScrubber) -> str:
        last = self._last
        if last is None or last[0] is not resource or last[1] is not scrubber:
            last = self._last = (resource, scrubber, resource_columns(resource.attributes, scrubber))
        return last[2]


_RESOURCE_COLUMNS = _ResourceColumns()


def _record(span: RawSpan, run_id: str, scrubber: SecretScrubber) -> dict[str, Any]:
    """A finished span as a `records` row (a JSON-ready dict), scrubbed, without the columns from its resource."""
    text = scrubber.scrub_text
    raw = span.attributes
    schema = raw.get('logfire.json_schema')
    # The schema's text is the same on every span of a kind: scrubbed once (see `SecretScrubber.scrub_text`).
    schema_properties = _parsed_schema_properties(text(schema)) if isinstance(schema, str) else {}
    attributes = {k: v for k, v in raw.items() if k not in _PROMOTED_ATTRIBUTES}

    events: list[dict[str, Any]] = []
    exception: dict[str, Any] = {}
    for name, timestamp, event_attributes in span.events:
        scrubbed = scrubber.scrub_attributes(event_attributes)
        events.append({'name': name, 'timestamp': _iso(timestamp), 'attributes': scrubbed})
        if name == 'exception':
            exception = scrubbed  # the last one is the one that ended the span
    tags = raw.get('logfire.tags')
    start_time, end_time = span.start_time, span.end_time
    return {
        'start_timestamp': _iso(start_time),
        'end_timestamp': _iso(end_time),
        'duration': (end_time - start_time) / 1e9,
        'trace_id': f'{span.trace_id:032x}',
        'span_id': f'{span.span_id:016x}',
        'parent_span_id': f'{span.parent_span_id:016x}' if span.parent_span_id is not None else None,
        'kind': 'log' if raw.get('logfire.span_type') == 'log' else 'span',
        'level': _level_name(raw.get('logfire.level_num'), span.status_code),
        'span_name': text(span.name),
        'message': text(str(raw.get('logfire.msg', span.name))),
        'attributes': scrubber.scrub_attributes(attributes, schema_properties),
        'tags': [text(str(t)) for t in cast('Sequence[Any]', tags)] if isinstance(tags, tuple | list) else [],
        'is_exception': bool(exception),
        'exception_type': _str_or_none(exception.get('exception.type')),
        'exception_message': _str_or_none(exception.get('exception.message')),
        'exception_stacktrace': _str_or_none(exception.get('exception.stacktrace')),
        'otel_status_code': span.status_code,
        'otel_scope_name': text(span.scope_name) if span.scope_name is not None else None,
        'otel_status_message': text(span.status_description) if span.status_description else None,
        'otel_span_kind': span.kind,
        'otel_events': events,
        'otel_links': [
            {
                'trace_id': f'{trace_id:032x}',
                'span_id': f'{span_id:016x}',
                'attributes': scrubber.scrub_attributes(link_attributes),
            }
            for trace_id, span_id, link_attributes in span.links
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
        return self.append(lines)

    def export_raw(self, spans: Iterable[tuple[RawSpan, str]]) -> SpanExportResult:
        """Like `export`, for spans kept as plain data, each with its `resource_columns`."""
        lines: list[str] = []
        for raw, resource in spans:
            try:
                lines.append(raw_to_line(raw, self.run_id, self.scrubber, resource) + '\n')
            except Exception:  # pragma: no cover - one odd span must not lose the batch
                continue
        return self.append(lines)

    def append(self, lines: Sequence[str]) -> SpanExportResult:
        """Append these lines (each ending in a newline) and flush them to the OS."""
        if not lines:
            return SpanExportResult.SUCCESS
        data = ''.join(lines)
        try:
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
                        return SpanExportResult.SUCCESS
        except OSError:
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Nothing to release: every batch closes its file."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every batch is already flushed."""
        return True


class SpoolSpanProcessor(SpanProcessor):
    """Buffers finished spans and writes them to the spool in batches.

    A batch is handed on once `max_batch` spans wait, or once the oldest has waited `max_delay_s`; `force_flush` (at
    session end, on Ctrl-C or SIGTERM) hands on the rest and returns once they are written.

    With a `SpoolWriterProcess` (see `store.spool_writer`), the thread that ends the span only copies the batch to
    that process, which scrubs, encodes and writes it on another core. Without one, or once it has died, the
    ending thread writes the batch itself: no writer thread, which on a machine with few cores would compete with
    the cases for the GIL. A SIGKILL loses at most the batch not yet handed on: the cases' results are in the
    journal regardless.
    """

    def __init__(
        self,
        exporter: SpoolSpanExporter,
        *,
        max_batch: int = 1024,
        max_delay_s: float = 1.0,
        writer: SpoolWriter | None = None,
    ) -> None:
        self.exporter = exporter
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.writer = writer
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
            self._write(batch)

    def _take(self) -> list[ReadableSpan]:
        batch, self._buffer = self._buffer, []
        return batch

    def _write(self, batch: list[ReadableSpan]) -> bool:
        writer = self.writer
        if writer is not None:
            if writer.send(batch):
                return True
            self._drop(writer)
        return self.exporter.export(batch) is SpanExportResult.SUCCESS

    def _drop(self, writer: SpoolWriter) -> None:
        """The writer died: this process writes from now on, starting with what the writer took and did not write."""
        self.writer = None
        writer.close()
        if lost := writer.unwritten():
            self.exporter.export(lost)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            batch = self._take()
        written = not batch or self._write(batch)
        writer = self.writer
        if writer is None or writer.flush(timeout_millis / 1000):
            return written
        if not writer.alive:
            self._drop(writer)
        return False

    def shutdown(self) -> None:
        self.force_flush()
        if self.writer is not None:
            self.writer.close()


class SpoolWriter(Protocol):
    """Writes batches of spans to the spool elsewhere (see `store.spool_writer.SpoolWriterProcess`)."""

    def send(self, spans: Sequence[ReadableSpan]) -> bool:
        """Hand the batch on; False if it could not be (then nothing of it was handed on)."""
        ...

    def flush(self, timeout_s: float) -> bool:
        """Wait until every batch handed on is written; False if one could not be, or on timeout."""
        ...

    def close(self) -> None:
        """Write what is left and stop."""
        ...

    @property
    def alive(self) -> bool:
        """False once the writer is known to have died."""
        ...

    def unwritten(self) -> list[ReadableSpan]:
        """Once it died: the spans it took and may not have written, for the caller to write."""
        ...
