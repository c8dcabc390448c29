"""Local trace store: every span of a run, kept in DuckDB in a `records` table shaped like Logfire's.

Writing happens in two steps so that it never slows a run and stays safe under pytest-xdist:

1. Each process appends finished spans, already scrubbed of secrets, to its own spool file
   (`<store dir>/spool/<run id>-<worker>-<pid>.jsonl`). A `SpoolSpanExporter` does this inside an OTel
   `BatchSpanProcessor`, so the work happens on the processor's thread, in batches, and every batch is flushed:
   a crash mid-run keeps what was already written.
2. `merge_spool` imports the spool files into the DuckDB file (DuckDB allows one writer process per file) and
   deletes them, then applies retention (keep the last N runs). The controller calls it at session end, and
   `open_store` calls it before any read, which also recovers the spool of a run that crashed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import duckdb
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from ._scrub import SecretScrubber

try:  # POSIX only; on Windows a merge may race with a live writer (see `_locked`).
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = (
    'DEFAULT_KEEP_RUNS',
    'DEFAULT_STORE_PATH',
    'RECORD_COLUMNS',
    'MergeResult',
    'SpoolSpanExporter',
    'StoreError',
    'merge_spool',
    'new_run_id',
    'open_store',
    'span_to_record',
    'spool_dir',
    'spool_span_processor',
)

DEFAULT_STORE_PATH = Path('.evaltrace/traces.duckdb')
DEFAULT_KEEP_RUNS = 20
SCHEMA_VERSION = '1'

LEVEL_NAMES = ('trace', 'debug', 'info', 'notice', 'warn', 'error', 'fatal')
# Lowest logfire level number of each name, as in `logfire._internal.constants.LEVEL_NUMBERS`.
_LEVEL_FLOORS = ((21, 'fatal'), (17, 'error'), (13, 'warn'), (10, 'notice'), (9, 'info'), (5, 'debug'), (1, 'trace'))

# (column, DuckDB type). The first twenty are the columns Logfire documents for its `records` table; the rest are
# Logfire columns we also fill, plus `run_id`. The spool files hold the same keys, so `read_json` maps them 1:1.
RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ('start_timestamp', 'TIMESTAMPTZ'),
    ('end_timestamp', 'TIMESTAMPTZ'),
    ('duration', 'DOUBLE'),
    ('trace_id', 'VARCHAR'),
    ('span_id', 'VARCHAR'),
    ('parent_span_id', 'VARCHAR'),
    ('kind', 'VARCHAR'),
    ('level', 'LEVEL'),
    ('span_name', 'VARCHAR'),
    ('message', 'VARCHAR'),
    ('attributes', 'JSON'),
    ('tags', 'VARCHAR[]'),
    ('is_exception', 'BOOLEAN'),
    ('exception_type', 'VARCHAR'),
    ('exception_message', 'VARCHAR'),
    ('exception_stacktrace', 'VARCHAR'),
    ('otel_status_code', 'VARCHAR'),
    ('otel_scope_name', 'VARCHAR'),
    ('service_name', 'VARCHAR'),
    ('deployment_environment', 'VARCHAR'),
    ('otel_status_message', 'VARCHAR'),
    ('otel_span_kind', 'VARCHAR'),
    ('otel_events', 'JSON'),
    ('otel_links', 'JSON'),
    ('otel_resource_attributes', 'JSON'),
    ('attributes_json_schema', 'JSON'),
    ('service_version', 'VARCHAR'),
    ('process_pid', 'INTEGER'),
    ('run_id', 'VARCHAR'),
)

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


class StoreError(Exception):
    """The trace store is missing, corrupt, locked or from another schema; the message is one line for the user."""


# --- span -> record ---------------------------------------------------------------------------------------------


def _iso(ns: int) -> str:
    # DuckDB keeps microseconds; keep the string exact to that.
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)).isoformat()


def _level_name(level_num: object, status: StatusCode) -> str:
    if isinstance(level_num, int) and not isinstance(level_num, bool):
        for floor, name in _LEVEL_FLOORS:
            if level_num >= floor:
                return name
        return 'trace'
    # Same default as logfire's span processor: spans with an error status are errors.
    return 'error' if status is StatusCode.ERROR else 'info'


def _plain(value: Any) -> Any:
    # OTel attribute values are scalars or tuples of scalars.
    return list(cast('Sequence[Any]', value)) if isinstance(value, tuple) else value


def _json_schema_properties(raw: object) -> dict[str, Any]:
    if not isinstance(raw, str):
        return {}
    try:
        schema = json.loads(raw)
    except ValueError:
        return {}
    properties = cast('dict[str, Any]', schema).get('properties') if isinstance(schema, dict) else None
    return cast('dict[str, Any]', properties) if isinstance(properties, dict) else {}


def span_to_record(span: ReadableSpan, run_id: str, scrubber: SecretScrubber) -> dict[str, Any] | None:
    """Convert a finished span to a `records` row (a JSON-ready dict), scrubbed; None for pending spans."""
    raw = dict(span.attributes or {})
    context = span.context
    if raw.get('logfire.span_type') == 'pending_span' or context is None or span.start_time is None:
        return None
    end_time = span.end_time if span.end_time is not None else span.start_time
    schema_properties = _json_schema_properties(raw.get('logfire.json_schema'))
    attributes = {k: v for k, v in raw.items() if k not in _PROMOTED_ATTRIBUTES}

    events: list[dict[str, Any]] = []
    exception: dict[str, Any] = {}
    for event in span.events:
        event_attributes = scrubber.scrub_attributes(event.attributes or {})
        events.append({'name': event.name, 'timestamp': _iso(event.timestamp), 'attributes': event_attributes})
        if event.name == 'exception':
            exception = event_attributes  # the last one is the one that ended the span
    resource = {k: _plain(v) for k, v in span.resource.attributes.items()}
    scrubbed_resource = scrubber.scrub_resource(span.resource)
    status = span.status
    tags = raw.get('logfire.tags')
    scope = span.instrumentation_scope
    parent = span.parent
    pid = resource.get('process.pid')
    return {
        'start_timestamp': _iso(span.start_time),
        'end_timestamp': _iso(end_time),
        'duration': (end_time - span.start_time) / 1e9,
        'trace_id': f'{context.trace_id:032x}',
        'span_id': f'{context.span_id:016x}',
        'parent_span_id': f'{parent.span_id:016x}' if parent is not None else None,
        'kind': 'log' if raw.get('logfire.span_type') == 'log' else 'span',
        'level': _level_name(raw.get('logfire.level_num'), status.status_code),
        'span_name': scrubber.scrub_text(span.name),
        'message': scrubber.scrub_text(str(raw.get('logfire.msg', span.name))),
        'attributes': scrubber.scrub_attributes(attributes, schema_properties),
        'tags': [str(t) for t in cast('Sequence[Any]', tags)] if isinstance(tags, tuple | list) else [],
        'is_exception': bool(exception),
        'exception_type': _str_or_none(exception.get('exception.type')),
        'exception_message': _str_or_none(exception.get('exception.message')),
        'exception_stacktrace': _str_or_none(exception.get('exception.stacktrace')),
        'otel_status_code': status.status_code.name,
        'otel_scope_name': scope.name if scope is not None else None,
        'service_name': _str_or_none(resource.get('service.name')),
        'deployment_environment': _str_or_none(
            resource.get('deployment.environment.name', resource.get('deployment.environment'))
        ),
        'otel_status_message': scrubber.scrub_text(status.description) if status.description else None,
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
        'otel_resource_attributes': scrubbed_resource,
        'attributes_json_schema': schema_properties or None,
        'service_version': _str_or_none(resource.get('service.version')),
        'process_pid': pid if isinstance(pid, int) else None,
        'run_id': run_id,
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


# --- writing: spool files ---------------------------------------------------------------------------------------


def spool_dir(store_path: Path | str = DEFAULT_STORE_PATH) -> Path:
    """The folder where processes append spans before they are merged into the store."""
    return Path(store_path).parent / 'spool'


def new_run_id() -> str:
    """A fresh run id that sorts by start time, e.g. `20250101T120000-3f9a1c`."""
    return f'{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}'


@contextlib.contextmanager
def _locked(file: IO[Any]) -> Generator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)


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
                record = span_to_record(span, self.run_id, self.scrubber)
            except Exception:  # pragma: no cover - one odd span must not lose the batch
                continue
            if record is not None:
                lines.append(json.dumps(record, ensure_ascii=False, separators=(',', ':'), default=str) + '\n')
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
            with self.path.open('a', encoding='utf-8') as f, _locked(f):
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


def spool_span_processor(
    store_path: Path | str,
    run_id: str,
    *,
    worker: str | None = None,
    extra_patterns: Sequence[str] = (),
    schedule_delay_millis: float = 500,
) -> BatchSpanProcessor:
    """The span processor that feeds the local store from this process.

    Add it to the tracer provider (e.g. `logfire.configure(additional_span_processors=[...])`) in every process
    that produces spans, controller and xdist workers alike, with the same `run_id`. Call its `force_flush()` (or
    `shutdown()`) before `merge_spool`, so that the last batch is on disk.

    Args:
        store_path: The DuckDB file; spool files go to `spool/` beside it.
        run_id: Shared by all processes of one run.
        worker: Names the spool file; default `$PYTEST_XDIST_WORKER` or `main`. The pid is always appended.
        extra_patterns: Regexes of further secrets to scrub (see `SecretScrubber`).
        schedule_delay_millis: Longest time a finished span waits before it is written.
    """
    worker = worker or os.environ.get('PYTEST_XDIST_WORKER', 'main')
    path = spool_dir(store_path) / f'{run_id}-{worker}-{os.getpid()}.jsonl'
    exporter = SpoolSpanExporter(path, run_id, SecretScrubber(extra_patterns))
    # The default queue (2048) drops spans when a burst of cases outruns the writer thread; never drop.
    return BatchSpanProcessor(
        exporter, max_queue_size=1_000_000, schedule_delay_millis=schedule_delay_millis, max_export_batch_size=1024
    )


# --- the DuckDB file --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeResult:
    """What a `merge_spool` call did."""

    files: int
    """Spool files imported."""
    records: int
    """Records imported."""
    pruned_runs: tuple[str, ...]
    """Runs deleted by retention."""


def _one_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _connect(store_path: Path, *, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            con = duckdb.connect(str(store_path), read_only=read_only)
        except duckdb.IOException as e:
            if 'lock' in str(e).lower():
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise StoreError(f'{store_path}: locked by another process ({_one_line(e)})') from None
            raise StoreError(f'{store_path}: not a readable trace store ({_one_line(e)})') from None
        except duckdb.Error as e:
            raise StoreError(f'{store_path}: not a readable trace store ({_one_line(e)})') from None
        # Timestamps print in UTC, as in Logfire, whatever the machine's zone (without ICU they show local time).
        with contextlib.suppress(duckdb.Error):
            con.execute("SET TimeZone = 'UTC'")
        return con


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute('SELECT table_name FROM duckdb_tables()').fetchall()}


def _check_schema(con: duckdb.DuckDBPyConnection, store_path: Path) -> bool:
    """True when the schema exists and is ours; raises for a foreign or older/newer file."""
    tables = _table_names(con)
    if not tables:
        return False
    version = None
    if 'evaltrace_meta' in tables:
        rows = con.execute("SELECT value FROM evaltrace_meta WHERE key = 'schema_version'").fetchall()
        version = rows[0][0] if rows else None
    if version != SCHEMA_VERSION or 'records' not in tables:
        raise StoreError(
            f'{store_path}: not an evaltrace trace store of schema {SCHEMA_VERSION} (found {version or "none"}); '
            'delete it to start a new one'
        )
    return True


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    levels = ', '.join(f"'{name}'" for name in LEVEL_NAMES)
    con.execute(f'CREATE TYPE LEVEL AS ENUM ({levels})')
    columns = ', '.join(f'{name} {type_}' for name, type_ in RECORD_COLUMNS)
    con.execute(f'CREATE TABLE records ({columns})')
    # Logfire's superset of `records` (it adds pending spans, which the store never keeps): same rows here.
    con.execute('CREATE VIEW records_all AS SELECT * FROM records')
    con.execute(
        'CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, '
        'records BIGINT, traces BIGINT, errors BIGINT, merged_at TIMESTAMPTZ)'
    )
    # Names of spool files already imported: makes an import idempotent if we die between commit and unlink.
    con.execute('CREATE TABLE spool_imports (file VARCHAR PRIMARY KEY, imported_at TIMESTAMPTZ)')
    con.execute('CREATE TABLE evaltrace_meta (key VARCHAR PRIMARY KEY, value VARCHAR)')
    con.execute("INSERT INTO evaltrace_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


def _claim_spool_files(directory: Path) -> list[Path]:
    """Rename live spool files out of the writers' way; return them with leftovers of an interrupted merge."""
    if not directory.is_dir():
        return []
    for path in sorted(directory.glob('*.jsonl')):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(f'{path.name}.{uuid.uuid4().hex[:12]}.merging'))
    return sorted(directory.glob('*.merging'))


def _import_file(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    with path.open('rb') as f, _locked(f):
        pass  # waits for a writer that opened the file before we renamed it
    # (DuckDB 2 refuses new work on a connection until a result is fully fetched: always fetchall.)
    if con.execute('SELECT 1 FROM spool_imports WHERE file = ?', [path.name]).fetchall():
        return 0
    columns = ', '.join(f"'{name}': '{'VARCHAR' if type_ == 'LEVEL' else type_}'" for name, type_ in RECORD_COLUMNS)
    names = ', '.join(name for name, _ in RECORD_COLUMNS)
    con.execute('BEGIN TRANSACTION')
    try:
        # ignore_errors turns a line cut short by a crash into an all-NULL row, which the WHERE drops.
        inserted = con.execute(
            f'INSERT INTO records SELECT {names} FROM read_json(?, format = ?, columns = {{{columns}}}, '
            'ignore_errors = true, maximum_object_size = 268435456) WHERE span_id IS NOT NULL',
            [str(path), 'newline_delimited'],
        ).fetchall()
        con.execute('INSERT INTO spool_imports VALUES (?, now())', [path.name])
        con.execute('COMMIT')
    except BaseException:
        con.execute('ROLLBACK')
        raise
    return int(inserted[0][0]) if inserted else 0


def merge_spool(
    store_path: Path | str = DEFAULT_STORE_PATH,
    *,
    keep_runs: int | None = DEFAULT_KEEP_RUNS,
    lock_timeout: float = 10.0,
) -> MergeResult:
    """Import all spool files into the store, delete them, and keep only the last `keep_runs` runs.

    Safe to call from any process at any time, also while a run is writing: only one merge holds the DuckDB file
    at once, and a writer whose file was claimed mid-batch starts a new file.

    Args:
        store_path: The DuckDB file; created if missing.
        keep_runs: Runs to keep (by start time, newest first); None or 0 keeps all.
        lock_timeout: Seconds to wait for another process that holds the file.

    Raises:
        StoreError: The file is corrupt, from another schema, or stays locked.
    """
    store_path = Path(store_path)
    directory = spool_dir(store_path)
    has_spool = any(directory.glob('*.jsonl')) or any(directory.glob('*.merging'))
    if not has_spool and (not keep_runs or not store_path.exists()):
        return MergeResult(0, 0, ())  # nothing to do; and readers need not take the write lock
    store_path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(store_path, read_only=False, lock_timeout=lock_timeout)
    try:
        if not _check_schema(con, store_path):
            _create_schema(con)
        files = _claim_spool_files(directory)
        imported = 0
        for path in files:
            try:
                imported += _import_file(con, path)
            except duckdb.Error as e:
                raise StoreError(f'{path}: could not import spool file ({_one_line(e)})') from None
            path.unlink()
        if files:
            _refresh_runs(con)
        pruned = _apply_retention(con, keep_runs) if keep_runs else ()
        return MergeResult(len(files), imported, pruned)
    finally:
        con.close()


def _refresh_runs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        'INSERT OR REPLACE INTO runs SELECT run_id, min(start_timestamp), max(end_timestamp), count(*), '
        'count(DISTINCT trace_id), count(*) FILTER (WHERE is_exception), now() FROM records GROUP BY run_id'
    )
    con.execute("DELETE FROM spool_imports WHERE imported_at < now() - INTERVAL '7 days'")


def _apply_retention(con: duckdb.DuckDBPyConnection, keep_runs: int) -> tuple[str, ...]:
    rows = con.execute('SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC OFFSET ?', [keep_runs]).fetchall()
    pruned = tuple(str(row[0]) for row in rows)
    if pruned:
        con.execute('DELETE FROM records WHERE list_contains(?, run_id)', [list(pruned)])
        con.execute('DELETE FROM runs WHERE list_contains(?, run_id)', [list(pruned)])
    return pruned


def open_store(
    store_path: Path | str = DEFAULT_STORE_PATH,
    *,
    merge: bool = True,
    keep_runs: int | None = None,
    lock_timeout: float = 10.0,
) -> duckdb.DuckDBPyConnection:
    """Open the store read-only, after merging any spool left behind (e.g. by a run that crashed).

    Retention is the controller's job (`merge_spool` at session end, with the configured `keep_runs`): a reader
    prunes nothing unless told to, so it cannot apply a different limit than the user configured.

    Raises:
        StoreError: No store (and no spool) at the path, or it is corrupt, locked or from another schema.
    """
    store_path = Path(store_path)
    if merge:
        merge_spool(store_path, keep_runs=keep_runs, lock_timeout=lock_timeout)
    if not store_path.exists():
        raise StoreError(f'no trace store at {store_path}; run your evals with pytest first')
    con = _connect(store_path, read_only=True, lock_timeout=lock_timeout)
    try:
        if not _check_schema(con, store_path):
            raise StoreError(f'{store_path}: the trace store is empty (no records table)')
    except BaseException:
        con.close()
        raise
    return con
