"""`evaltrace sql`: Logfire-style SQL over the local trace store, printed as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import duckdb

from ..store.duckdb import StoreError, open_store
from .paths import SettingOffError
from .paths import store_path as cli_store_path

__all__ = (
    'OutputFormat',
    'QueryError',
    'QueryResult',
    'add_sql_parser',
    'format_result',
    'logfire_compat',
    'query_store',
    'run_sql',
    'sql_command',
)

OutputFormat = Literal['table', 'csv', 'json']
FORMATS: tuple[OutputFormat, ...] = ('table', 'csv', 'json')


@dataclass(frozen=True)
class QueryResult:
    """Columns, their DuckDB type names and the rows of a query."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]


class QueryError(Exception):
    """The SQL did not run; the message is one line, DuckDB's own first line."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Logfire compares `level` with level names by severity (`level >= 'warn'`). DuckDB compares an ENUM with a string
# literal as text, so the literal is cast to the ENUM first. `warning` is logfire's alias of `warn`.
_LEVEL_COMPARISON = re.compile(
    r"""\b(level\s*(?:>=|<=|<>|!=|=|>|<)\s*)'(trace|debug|info|notice|warn|warning|error|fatal)'(?!\s*::)""",
    re.IGNORECASE,
)


def logfire_compat(query: str) -> str:
    """Rewrite the bits of Logfire's SQL dialect that DuckDB reads differently (today: level comparisons)."""
    return _LEVEL_COMPARISON.sub(
        lambda m: f"{m.group(1)}'{'warn' if m.group(2).lower() == 'warning' else m.group(2).lower()}'::LEVEL", query
    )


def query_store(con: duckdb.DuckDBPyConnection, query: str) -> QueryResult | None:
    """Run one query (in Logfire's dialect, see `logfire_compat`); None when the statement returns no rows.

    Raises:
        QueryError: DuckDB rejected the query (syntax, unknown column, write to the read-only store, ...).
    """
    try:
        # The stubs say a relation, but statements without rows (SET, ...) return None.
        relation = cast('duckdb.DuckDBPyRelation | None', con.sql(logfire_compat(query)))
        if relation is None:
            return None
        types = tuple(str(t) for t in relation.types)
        columns = tuple(relation.columns)
        # Fetching TIMESTAMPTZ into Python needs pytz; print them as DuckDB does instead (UTC, set by open_store).
        if any('TIME ZONE' in t for t in types):
            projections = [
                f'CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}' if 'TIME ZONE' in t else _quote(c)
                for c, t in zip(columns, types, strict=True)
            ]
            relation = relation.select(', '.join(projections))
        rows = relation.fetchall()
    except duckdb.Error as e:
        raise QueryError(_one_line(e)) from None
    return QueryResult(columns, types, rows)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _jsonable(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    if type_name == 'JSON' and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v, '') for v in cast('Sequence[Any]', value)]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, '') for k, v in cast('dict[Any, Any]', value).items()}
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)  # dates, times, UUIDs, intervals, blobs


def _text(value: Any) -> str:
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value, ''), ensure_ascii=False, default=str)
    return str(value)


def _cell(value: Any, width: int) -> str:
    text = _text(value).replace('\r\n', ' ').replace('\n', ' ').replace('\t', ' ')
    return text if len(text) <= width else text[: width - 1] + '…'


def format_result(result: QueryResult, fmt: OutputFormat, out: TextIO, *, max_width: int = 60) -> None:
    """Write a query result to `out` as an aligned text table, CSV (with header) or a JSON array of objects."""
    if fmt == 'json':
        objects = [
            {c: _jsonable(v, t) for c, t, v in zip(result.columns, result.types, row, strict=True)}
            for row in result.rows
        ]
        json.dump(objects, out, ensure_ascii=False, indent=2, default=str)
        out.write('\n')
        return
    if fmt == 'csv':
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(result.columns)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        return
    cells = [[_cell(v, max_width) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [any(k in t for k in ('INT', 'DOUBLE', 'FLOAT', 'DECIMAL', 'REAL')) for t in result.types]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if is_num else v.ljust(w) for v, w, is_num in zip(values, widths, numeric, strict=True)]
        return ' │ '.join(parts).rstrip()

    out.write(line(result.columns) + '\n')
    out.write('─┼─'.join('─' * w for w in widths) + '\n')
    for row in cells:
        out.write(line(row) + '\n')
    count = len(result.rows)
    out.write(f'({count} row{"" if count == 1 else "s"})\n')


def run_sql(
    query: str,
    *,
    store_path: Path | str | None = None,
    fmt: OutputFormat = 'table',
    keep_runs: int | None = None,
    max_width: int = 60,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run `query` against the store (read-only) and print the result; returns the exit status.

    Errors (no store, corrupt store, bad SQL) are one line on `err`, status 1.
    """
    out = cast('TextIO', sys.stdout) if out is None else out
    err = cast('TextIO', sys.stderr) if err is None else err
    try:
        con = open_store(
            cli_store_path(None if store_path is None else Path(store_path)),
            keep_runs=keep_runs,
            on_notice=lambda line: err.write(line + '\n'),
        )
    except (StoreError, SettingOffError) as e:
        err.write(f'evaltrace sql: {e}\n')
        return 1
    try:
        result = query_store(con, query)
    except QueryError as e:
        err.write(f'evaltrace sql: {e}\n')
        return 1
    finally:
        con.close()
    if result is None:
        out.write('OK\n')
    else:
        format_result(result, fmt, out, max_width=max_width)
    return 0


def sql_command(args: argparse.Namespace) -> int:
    """The handler `add_sql_parser` registers: reads the parsed options and calls `run_sql`."""
    query = cast('str', args.query)
    if query == '-':
        query = sys.stdin.read()
    return run_sql(
        query,
        store_path=cast('Path | None', args.store),
        fmt=cast('OutputFormat', args.format),
        max_width=cast('int', args.max_width),
    )


def add_sql_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:  # pyright: ignore[reportPrivateUsage]
    """Register `evaltrace sql`; the parser's `handler` default is `sql_command(args) -> int`."""
    parser = subparsers.add_parser(
        'sql',
        help='query the local trace store with SQL (Logfire records table)',
        description=(
            "Run SQL against the local trace store, as in Logfire's Explore view: one `records` row per span or log, "
            "with Logfire's columns (span_name, message, duration in seconds, attributes as JSON for ->>, ...) "
            'plus run_id; a `runs` table lists the stored runs. The store is opened read-only.'
        ),
    )
    parser.add_argument(
        'query', help='the SQL, e.g. "SELECT span_name, duration FROM records LIMIT 5"; \'-\' reads stdin'
    )
    parser.add_argument(
        '--store',
        type=Path,
        help='trace store (default: the store setting, as pytest resolves it: .evaltrace/traces.duckdb)',
    )
    parser.add_argument('--format', choices=FORMATS, default='table', help='output format (default: %(default)s)')
    parser.add_argument(
        '--max-width', type=int, default=60, help='table format: longest cell before it is cut (default: %(default)s)'
    )
    parser.set_defaults(handler=sql_command)
    return parser
