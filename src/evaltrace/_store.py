"""Local trace store: every span of a run, kept in DuckDB in a `records` table shaped like Logfire's.

Writing happens in two steps so that it never slows a run and stays safe under pytest-xdist:

1. Each process appends finished spans, already scrubbed of secrets, to its own spool file (see `_spool`).
2. `merge_spool` imports the spool files into the DuckDB file (DuckDB allows one writer process per file),
   deletes them, and applies retention (keep the last N runs). `open_store` calls it before any read, so the
   store is current whenever it is queried, and the spool of a run that crashed is recovered. A run itself
   only merges when the spool holds more runs than the retention (`EvalSession.close_tracing`), so it never pays for
   DuckDB otherwise.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ._spool import (
    DEFAULT_STORE_PATH,
    LEVEL_NAMES,
    RECORD_COLUMNS,
    StoreError,
    locked,
    read_retention,
    spool_dir,
)

__all__ = (
    'DEFAULT_KEEP_RUNS',
    'DEFAULT_STORE_PATH',
    'MergeResult',
    'StoreError',
    'merge_spool',
    'open_store',
)

DEFAULT_KEEP_RUNS = 20
SCHEMA_VERSION = '1'


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
    with path.open('rb') as f, locked(f):
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
    """Open the store read-only, after merging the spool into it (the runs since the last query, or a crashed one).

    The merge applies `keep_runs`, or else the retention the last run configured (`_spool.write_retention`): a
    reader never applies a limit the user did not configure.

    Raises:
        StoreError: No store (and no spool) at the path, or it is corrupt, locked or from another schema.
    """
    store_path = Path(store_path)
    if merge:
        merge_spool(store_path, keep_runs=keep_runs or read_retention(store_path), lock_timeout=lock_timeout)
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
