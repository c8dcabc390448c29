"""The demo shop database: built from the committed SQL seed on first use, opened read-only and traced."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import logfire

__all__ = ('DATA_DIR', 'QueryResult', 'connect_readonly', 'execute_readonly', 'schema_sql', 'shop_db')

DATA_DIR = Path(__file__).resolve().parent / 'data'
_BUILD_DIR = DATA_DIR / '.build'


def shop_db(seed: Path = DATA_DIR / 'shop.sql', build_dir: Path = _BUILD_DIR) -> Path:
    """Path of the SQLite database built from `seed`, building it if needed.

    The file name carries the seed's hash, so editing the seed gives a fresh database and a stale one is never
    used. The database is written to a temporary file and renamed, so concurrent builders (xdist workers) never
    see a half-written file.
    """
    script = seed.read_text()
    digest = hashlib.sha256(script.encode()).hexdigest()[:12]
    target = build_dir / f'{seed.stem}-{digest}.sqlite'
    if not target.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f'{target.name}.{os.getpid()}.tmp')
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(script)
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, target)
    return target


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open `path` read-only (the `mode=ro` URI and `query_only`), with statements traced as spans.

    Only statements run through `conn.cursor()` are traced: `Connection.execute` bypasses the instrumentation.
    """
    conn = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True)
    conn.execute('PRAGMA query_only = ON')
    return logfire.instrument_sqlite3(conn)


@dataclass(frozen=True)
class QueryResult:
    """Rows returned by a read-only query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def execute_readonly(path: Path, sql: str, *, max_rows: int = 200) -> QueryResult:
    """Run one SQL statement against a read-only connection to `path`.

    Raises:
        sqlite3.Error: If the statement fails, writes (the connection refuses), or is more than one statement.
    """
    conn = connect_readonly(path)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description or ()]
        return QueryResult(columns=columns, rows=[tuple(row) for row in cursor.fetchmany(max_rows)])
    finally:
        conn.close()


def schema_sql(path: Path) -> str:
    """The `CREATE TABLE` statements of the database, for prompts."""
    conn = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True)
    try:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    finally:
        conn.close()
    return ';\n'.join(row[0] for row in rows) + ';'


if __name__ == '__main__':
    shop_db()
