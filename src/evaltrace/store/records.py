"""Reading the local trace store: the one module that reads its records, for the HTML report's waterfalls,
`evaltrace show` and re-scoring (`evaltrace sql` runs the user's own SQL, see `cli.sql`).

Spans come back as `SpanRecord`s, one type whether a span was read from a run's spool (the HTML report at the end
of a run, which never pays for DuckDB) or from the DuckDB file. The query functions take a connection `open_store`
opened; `trace_spans` opens the store itself, and only when the spool does not hold what it needs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from pydantic_core import from_json

from ..names import ROOT_ATTRIBUTE, SHARD_ATTRIBUTE
from .files import spool_files

if TYPE_CHECKING:
    import duckdb

__all__ = (
    'SpanRecord',
    'case_traces',
    'latest_runs',
    'read_spool',
    'run_ids_starting_with',
    'run_shard',
    'run_suites',
    'spans_of_traces',
    'trace_ids_starting_with',
    'trace_spans',
    'traces_in_run',
)

# A case's root span carries ROOT_ATTRIBUTE and its node id. Parenthesised: DuckDB 1.1 binds `->>` looser than `=`.
_IS_CASE_ROOT = f"(attributes->>'{ROOT_ATTRIBUTE}') = 'true'"
_NODEID = "(attributes->>'nodeid')"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class SpanRecord(NamedTuple):
    """One span (or log) of the store, with what its readers use; text columns that were NULL are ''."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    span_name: str
    message: str
    start_us: int
    """Start, in microseconds since the epoch."""
    duration: float
    """In seconds."""
    level: str
    kind: str
    """`span` or `log`."""
    attributes: dict[str, Any]
    exception_type: str | None
    exception_message: str | None
    exception_stacktrace: str | None
    json_schema: dict[str, Any]
    """The JSON schema of each attribute logfire encoded as JSON (`attributes_json_schema`), by attribute name."""
    scope: str | None
    """The instrumentation scope's name."""
    tags: tuple[str, ...]
    status_code: str | None
    """`UNSET`, `OK` or `ERROR`."""
    status_message: str | None


# The columns of a `SpanRecord`, in its order (JSON columns as text, decoded by `_span`).
_SPAN_COLUMNS = (
    'trace_id, span_id, parent_span_id, span_name, message, epoch_us(start_timestamp), duration, '
    'CAST(level AS VARCHAR), kind, CAST(attributes AS VARCHAR), exception_type, exception_message, '
    'exception_stacktrace, CAST(attributes_json_schema AS VARCHAR), otel_scope_name, tags, otel_status_code, '
    'otel_status_message'
)


def _object(value: Any) -> dict[str, Any]:
    """A JSON object column's value as a dict: decoded from DuckDB's text, as is from the spool; else {}."""
    if isinstance(value, str | bytes) and value:
        try:
            value = from_json(value)
        except ValueError:  # a spool line of the wrong shape: no attributes, as DuckDB's import would keep
            return {}
    return cast('dict[str, Any]', value) if isinstance(value, dict) else {}


def _span(row: Sequence[Any]) -> SpanRecord:
    return SpanRecord(
        trace_id=str(row[0]),
        span_id=str(row[1]),
        parent_span_id=row[2] or None,
        span_name=str(row[3] or ''),
        message=str(row[4] or ''),
        start_us=int(row[5]),
        duration=float(row[6] or 0.0),
        level=str(row[7] or 'info'),
        kind=str(row[8] or 'span'),
        attributes=_object(row[9]),
        exception_type=row[10],
        exception_message=row[11],
        exception_stacktrace=row[12],
        json_schema=_object(row[13]),
        scope=row[14],
        tags=tuple(str(t) for t in cast('Sequence[Any]', row[15] or ())),
        status_code=row[16],
        status_message=row[17],
    )


def _spool_span(record: Mapping[str, Any]) -> SpanRecord:
    get = record.get
    start_us = _epoch_us(str(get('start_timestamp')))
    return _span(
        (
            get('trace_id'), get('span_id'), get('parent_span_id'), get('span_name'), get('message'), start_us,
            get('duration'), get('level'), get('kind'), get('attributes'), get('exception_type'),
            get('exception_message'), get('exception_stacktrace'), get('attributes_json_schema'),
            get('otel_scope_name'), get('tags'), get('otel_status_code'), get('otel_status_message'),
        )
    )  # fmt: skip


def _epoch_us(timestamp: str) -> int:
    """Microseconds since the epoch of a spool timestamp (`store.spool._iso`: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`)."""
    if len(timestamp) == 32 and timestamp.endswith('+00:00') and timestamp[19] == '.':
        # The spool's own form: the second is parsed once for all the spans that start in it.
        return _epoch_second(timestamp[:19]) * 1_000_000 + int(timestamp[20:26])
    return (dt.datetime.fromisoformat(timestamp) - _EPOCH) // dt.timedelta(microseconds=1)


@functools.lru_cache(maxsize=64)
def _epoch_second(second: str) -> int:
    return int((dt.datetime.fromisoformat(second).replace(tzinfo=dt.UTC) - _EPOCH).total_seconds())


# --- spans -------------------------------------------------------------------------------------------------------


_TRACE_KEY = b'"trace_id":"'


def read_spool(
    store_path: Path | str, run_id: str | None = None, *, trace_ids: Set[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The records in the spool (of one run, if given), in file order; a line cut short by a crash is skipped.

    With `trace_ids`, only the records of those traces: a line of another trace is not parsed (the spool writes
    `trace_id` among its first, fixed-format columns, so its first occurrence in the line is the column).
    """
    for path in spool_files(store_path, run_id):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # claimed by a merge meanwhile
            continue
        for raw in data.splitlines():
            if trace_ids is not None and (at := raw.find(_TRACE_KEY)) >= 0:
                start = at + len(_TRACE_KEY)
                if raw[start : start + 32].decode('ascii', 'replace') not in trace_ids:
                    continue
            try:
                record = from_json(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield cast('dict[str, Any]', record)


def spans_of_traces(
    con: duckdb.DuckDBPyConnection, trace_ids: Iterable[str], *, run_id: str | None = None
) -> dict[str, list[SpanRecord]]:
    """The spans of each trace the store has (of run `run_id` only, if given), in start order."""
    query = f'SELECT {_SPAN_COLUMNS} FROM records WHERE list_contains(?, trace_id)'
    params: list[Any] = [list(trace_ids)]
    if run_id is not None:
        query += ' AND run_id = ?'
        params.append(run_id)
    by_trace: dict[str, list[SpanRecord]] = {}
    for row in con.execute(query + ' ORDER BY trace_id, start_timestamp, span_id', params).fetchall():
        span = _span(row)
        by_trace.setdefault(span.trace_id, []).append(span)
    return by_trace


def trace_spans(
    store_path: Path, trace_ids: Iterable[str], *, run_id: str | None = None
) -> dict[str, list[SpanRecord]]:
    """The spans of each trace, read from run `run_id`'s spool (no DuckDB at the end of a run), else the store.

    The traces not found in the spool come from the DuckDB store, opened (and merged) only for them. Spans are in
    the order they were read (file order from the spool, start order from the store).

    Raises:
        StoreError: The store is needed but missing, corrupt or locked.
    """
    wanted = {t for t in trace_ids if t}
    if not wanted:
        return {}
    by_trace: dict[str, list[SpanRecord]] = {}
    if run_id:
        for record in read_spool(store_path, run_id, trace_ids=wanted):
            if (trace_id := str(record.get('trace_id'))) in wanted:
                by_trace.setdefault(trace_id, []).append(_spool_span(record))
    missing = sorted(wanted - by_trace.keys())
    if missing and (store_path.exists() or not by_trace):
        from .duckdb import open_store  # DuckDB only when the spool does not have the spans

        con = open_store(store_path)
        try:
            by_trace.update(spans_of_traces(con, missing))
        finally:
            con.close()
    return by_trace


def trace_ids_starting_with(con: duckdb.DuckDBPyConnection, prefix: str, *, limit: int = 2) -> list[str]:
    """Up to `limit` trace ids that start with `prefix` (lower-cased)."""
    rows = con.execute(
        'SELECT DISTINCT trace_id FROM records WHERE starts_with(trace_id, ?) LIMIT ?', [prefix.lower(), limit]
    ).fetchall()
    return [str(row[0]) for row in rows]


# --- runs and their cases ------------------------------------------------------------------------------------------


def latest_runs(con: duckdb.DuckDBPyConnection, limit: int) -> list[str]:
    """The ids of the last `limit` runs, newest first."""
    rows = con.execute('SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?', [limit]).fetchall()
    return [str(row[0]) for row in rows]


def run_ids_starting_with(con: duckdb.DuckDBPyConnection, prefix: str) -> list[str]:
    """The ids of the stored runs that start with `prefix`, in name order."""
    rows = con.execute('SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id', [prefix]).fetchall()
    return [str(row[0]) for row in rows]


def run_suites(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """The suite ids (node ids without the case part) whose cases the run stored, in name order."""
    rows = con.execute(
        f"SELECT DISTINCT split_part({_NODEID}, '[', 1) AS suite FROM records "
        f'WHERE run_id = ? AND {_IS_CASE_ROOT} AND {_NODEID} IS NOT NULL ORDER BY suite',
        [run_id],
    ).fetchall()
    return [str(row[0]) for row in rows if row[0]]


def case_traces(con: duckdb.DuckDBPyConnection, run_id: str, nodeids: Sequence[str]) -> dict[str, str]:
    """The trace id of each of `nodeids` whose case root span the run stored (the last one, if several)."""
    rows = con.execute(
        f'SELECT {_NODEID}, trace_id FROM records WHERE run_id = ? AND {_IS_CASE_ROOT} '
        f'AND list_contains(?, {_NODEID}) ORDER BY start_timestamp',
        [run_id, list(nodeids)],
    ).fetchall()
    return {str(nodeid): str(trace_id) for nodeid, trace_id in rows}


def run_shard(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The shard (`i/n`) the run was, as its case roots say; None when it was not one (or stored no case)."""
    row = con.execute(
        f"SELECT attributes->>'{SHARD_ATTRIBUTE}' FROM records WHERE run_id = ? AND {_IS_CASE_ROOT} "
        f"AND attributes->>'{SHARD_ATTRIBUTE}' IS NOT NULL LIMIT 1",
        [run_id],
    ).fetchone()
    return None if row is None else str(row[0])


def traces_in_run(con: duckdb.DuckDBPyConnection, run_id: str, trace_ids: Sequence[str]) -> set[str]:
    """Those of `trace_ids` that the run stored spans of."""
    rows = con.execute(
        'SELECT DISTINCT trace_id FROM records WHERE run_id = ? AND list_contains(?, trace_id)',
        [run_id, list(trace_ids)],
    ).fetchall()
    return {str(row[0]) for row in rows}
