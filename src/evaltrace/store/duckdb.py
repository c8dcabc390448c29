"""Local trace store: every span of a run, kept in DuckDB in a `records` table shaped like Logfire's.

Writing happens in two steps so that it never slows a run and stays safe under pytest-xdist:

1. Each process appends finished spans, already scrubbed of secrets, to its own spool file (see `store.spool`,
   `store.files`).
2. `merge_spool` imports the spool files into the DuckDB file (DuckDB allows one writer process per file),
   deletes them, and applies retention (keep the last N runs). `open_store` calls it before any read, so the
   store is current whenever it is queried, and the spool of a run that crashed is recovered. A run itself
   only merges when the spool holds more runs than the retention (`EvalSession.close_tracing`), so it never pays for
   DuckDB otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .files import (
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
    notices: tuple[str, ...] = ()
    """One line for each thing the user should know: a corrupt store rebuilt, a spool file set aside."""


class _CorruptStore(StoreError):
    """The DuckDB file cannot be read at all (empty, random or cut short): rebuilt from the spool."""


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
            raise _CorruptStore(_one_line(e)) from None
        except duckdb.Error as e:
            raise _CorruptStore(_one_line(e)) from None
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
    # A level that is no level name becomes NULL rather than failing the whole file.
    names = ', '.join(f'TRY_CAST({name} AS LEVEL)' if type_ == 'LEVEL' else name for name, type_ in RECORD_COLUMNS)
    con.execute('BEGIN TRANSACTION')
    try:
        # ignore_errors turns a line cut short by a crash, or a line of the wrong shape, into an all-NULL row (or
        # NULLs where a value has the wrong type), which the WHERE drops: every row the store keeps names its span,
        # trace, run and start.
        inserted = con.execute(
            f'INSERT INTO records SELECT {names} FROM read_json(?, format = ?, columns = {{{columns}}}, '
            'ignore_errors = true, maximum_object_size = 268435456) WHERE span_id IS NOT NULL '
            'AND trace_id IS NOT NULL AND run_id IS NOT NULL AND start_timestamp IS NOT NULL',
            [str(path), 'newline_delimited'],
        ).fetchall()
        con.execute('INSERT INTO spool_imports VALUES (?, now())', [path.name])
        con.execute('COMMIT')
    except BaseException:
        con.execute('ROLLBACK')
        raise
    return int(inserted[0][0]) if inserted else 0


def _set_aside(store_path: Path, reason: str) -> str:
    """Move an unreadable store out of the way (keeping it, in case it matters to someone); the notice to show."""
    aside = store_path.with_name(f'{store_path.name}.corrupt')
    try:
        os.replace(store_path, aside)
    except OSError as e:
        raise StoreError(
            f'{store_path}: not a readable trace store ({reason}), and it cannot be moved aside: {e}'
        ) from None
    Path(f'{store_path}.wal').unlink(missing_ok=True)
    return (
        f'evaltrace: {store_path} was not a readable trace store ({reason}); moved it to {aside.name} and '
        'rebuilt the store from the spool (the runs not yet merged)'
    )


def _open_for_merge(store_path: Path, lock_timeout: float) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """The store opened for writing, and whether its schema exists.

    Raises:
        _CorruptStore: The file cannot be read (also when it opens, but its catalog is cut short).
    """
    con = _connect(store_path, read_only=False, lock_timeout=lock_timeout)
    try:
        return con, _check_schema(con, store_path)
    except duckdb.Error as e:
        con.close()
        raise _CorruptStore(_one_line(e)) from None
    except BaseException:
        con.close()
        raise


def _merge(store_path: Path, directory: Path, keep_runs: int | None, lock_timeout: float) -> MergeResult:
    notices: list[str] = []
    con, has_schema = _open_for_merge(store_path, lock_timeout)
    try:
        if not has_schema:
            _create_schema(con)
        files = _claim_spool_files(directory)
        imported = 0
        done: list[Path] = []
        for path in files:
            try:
                imported += _import_file(con, path)
            except duckdb.Error as e:
                if store_path.name in str(e):  # the store's own file failed to read: not this spool file's fault
                    raise
                # Set aside, so that one bad spool file does not block every later query.
                rejected = path.with_name(f'{path.name}.rejected')
                os.replace(path, rejected)
                notices.append(
                    f'evaltrace: {path.name}: could not import spool file ({_one_line(e)}); kept as {rejected.name}'
                )
                continue
            done.append(path)
        if files:
            _refresh_runs(con)
        pruned = _apply_retention(con, keep_runs) if keep_runs else ()
    except duckdb.Error as e:  # a store that opened, but whose pages are cut short or garbled
        raise _CorruptStore(_one_line(e)) from None
    finally:
        con.close()
    # Deleted only once the whole merge held: if the store turns out corrupt, the rebuild imports them again.
    for path in done:
        path.unlink(missing_ok=True)
    return MergeResult(len(files), imported, pruned, tuple(notices))


def merge_spool(
    store_path: Path | str = DEFAULT_STORE_PATH,
    *,
    keep_runs: int | None = DEFAULT_KEEP_RUNS,
    lock_timeout: float = 10.0,
    rebuild: bool = False,
) -> MergeResult:
    """Import all spool files into the store, delete them, and keep only the last `keep_runs` runs.

    Safe to call from any process at any time, also while a run is writing: only one merge holds the DuckDB file
    at once, and a writer whose file was claimed mid-batch starts a new file.

    Args:
        store_path: The DuckDB file; created if missing.
        keep_runs: Runs to keep (by start time, newest first); None or 0 keeps all.
        lock_timeout: Seconds to wait for another process that holds the file.
        rebuild: Open the store even with no spool to import (so that an unreadable one is rebuilt).

    An unreadable file (empty, random, cut short by a full disk) is moved to `<name>.corrupt` and the store is
    rebuilt from the spool; a spool file DuckDB cannot import is kept as `<name>.rejected`. Each is said in one line
    of `MergeResult.notices`.

    Raises:
        StoreError: The file is from another schema, or stays locked.
    """
    store_path = Path(store_path)
    directory = spool_dir(store_path)
    has_spool = any(directory.glob('*.jsonl')) or any(directory.glob('*.merging'))
    if not has_spool and not rebuild and (not keep_runs or not store_path.exists()):
        return MergeResult(0, 0, ())  # nothing to do; and readers need not take the write lock
    store_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _merge(store_path, directory, keep_runs, lock_timeout)
    except _CorruptStore as e:  # empty, random, or cut short by a full disk: keep it aside, rebuild from the spool
        notice = _set_aside(store_path, str(e))
    result = _merge(store_path, directory, keep_runs, lock_timeout)
    return dataclasses.replace(result, notices=(notice, *result.notices))


def _refresh_runs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        'INSERT OR REPLACE INTO runs SELECT run_id, min(start_timestamp), max(end_timestamp), count(*), '
        'count(DISTINCT trace_id), count(*) FILTER (WHERE is_exception), now() FROM records '
        'WHERE run_id IS NOT NULL GROUP BY run_id'
    )
    con.execute("DELETE FROM spool_imports WHERE imported_at < now() - INTERVAL '7 days'")


def _apply_retention(con: duckdb.DuckDBPyConnection, keep_runs: int) -> tuple[str, ...]:
    rows = con.execute('SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC OFFSET ?', [keep_runs]).fetchall()
    pruned = tuple(str(row[0]) for row in rows)
    if pruned:
        con.execute('DELETE FROM records WHERE list_contains(?, run_id)', [list(pruned)])
        con.execute('DELETE FROM runs WHERE list_contains(?, run_id)', [list(pruned)])
    return pruned


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + '\n')


def open_store(
    store_path: Path | str = DEFAULT_STORE_PATH,
    *,
    merge: bool = True,
    keep_runs: int | None = None,
    lock_timeout: float = 10.0,
    on_notice: Callable[[str], object] = _stderr_line,
) -> duckdb.DuckDBPyConnection:
    """Open the store read-only, after merging the spool into it (the runs since the last query, or a crashed one).

    The merge applies `keep_runs`, or else the retention the last run configured (`store.files.write_retention`): a
    reader never applies a limit the user did not configure. An unreadable store is rebuilt from the spool (see
    `merge_spool`); what was done is passed to `on_notice`, one line each (by default, to stderr).

    Raises:
        StoreError: No store (and no spool) at the path, or it is locked or from another schema.
    """
    store_path = Path(store_path)
    keep = keep_runs or read_retention(store_path)
    if merge:
        for notice in merge_spool(store_path, keep_runs=keep, lock_timeout=lock_timeout).notices:
            on_notice(notice)
    if not store_path.exists():
        raise StoreError(f'no trace store at {store_path}; run your evals with pytest first')
    try:
        con = _open_read_only(store_path, lock_timeout)
    except _CorruptStore:
        for notice in merge_spool(store_path, keep_runs=keep, lock_timeout=lock_timeout, rebuild=True).notices:
            on_notice(notice)
        con = _open_read_only(store_path, lock_timeout)
    return con


def _open_read_only(store_path: Path, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    con = _connect(store_path, read_only=True, lock_timeout=lock_timeout)
    try:
        if not _check_schema(con, store_path):
            raise StoreError(f'{store_path}: the trace store is empty (no records table)')
    except duckdb.Error as e:  # opened, but cut short inside
        con.close()
        raise _CorruptStore(_one_line(e)) from None
    except BaseException:
        con.close()
        raise
    return con
