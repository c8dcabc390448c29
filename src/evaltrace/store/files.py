"""The files of the local trace store: where they live, the shape of a record, and the lock writers and merges share.

Beside the DuckDB file (default `.evaltrace/traces.duckdb`) is its spool folder: each process appends its spans to
`spool/<run id>-<worker>-<pid>.jsonl` (see `store.spool`), one `records` row a line, until a merge imports them into the
DuckDB file (see `store.duckdb`). The retention the last run configured is kept there too, for that merge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

from ..names import DEFAULT_STORE_PATH

try:  # POSIX only; on Windows a merge may race with a live writer (see `locked`).
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = (
    'DEFAULT_STORE_PATH',
    'LEVEL_NAMES',
    'RECORD_COLUMNS',
    'StoreError',
    'locked',
    'read_retention',
    'spool_dir',
    'spool_file',
    'spool_files',
    'spooled_runs',
    'write_retention',
)

LEVEL_NAMES = ('trace', 'debug', 'info', 'notice', 'warn', 'error', 'fatal')


class StoreError(Exception):
    """The trace store is missing, corrupt, locked or from another schema; the message is one line for the user."""


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


def spool_dir(store_path: Path | str = DEFAULT_STORE_PATH) -> Path:
    """The folder where processes append spans before they are merged into the store."""
    return Path(store_path).parent / 'spool'


def spool_file(store_path: Path | str, run_id: str, worker: str, pid: int) -> Path:
    """The spool file of one process of a run: `<run id>-<worker>-<pid>.jsonl`."""
    return spool_dir(store_path) / f'{run_id}-{worker}-{pid}.jsonl'


def spool_files(store_path: Path | str, run_id: str | None = None) -> list[Path]:
    """The spool files (of one run, if given) in name order, live or claimed by a merge that has not finished."""
    directory = spool_dir(store_path)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob(f'{run_id}-*' if run_id else '*'))
    return [p for p in paths if p.name.endswith(('.jsonl', '.merging'))]


def spooled_runs(store_path: Path | str) -> set[str]:
    """The run ids that have spool files waiting to be merged into the store."""
    # `<run id>-<worker>-<pid>.jsonl`, or that name plus `.<hex>.merging` once a merge claimed it.
    names = (p.name.partition('.jsonl')[0] for p in spool_files(store_path))
    return {name.rsplit('-', 2)[0] for name in names}


@contextlib.contextmanager
def locked(file: IO[Any]) -> Generator[None]:
    """Hold the exclusive lock of an open spool file: a writer while it appends, a merge before it imports."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _retention_file(store_path: Path | str) -> Path:
    return spool_dir(store_path) / 'retention'


def write_retention(store_path: Path | str, keep_runs: int | None) -> None:
    """Record the configured retention beside the spool, for the merge that a later query runs (see `store.duckdb`)."""
    path = _retention_file(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(keep_runs or 0), encoding='utf-8')


def read_retention(store_path: Path | str) -> int | None:
    """The retention the last run configured (None: keep every run, or none recorded)."""
    try:
        return int(_retention_file(store_path).read_text(encoding='utf-8').strip()) or None
    except (OSError, ValueError):
        return None
