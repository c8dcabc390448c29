"""The spans of the HTML report's waterfalls: read from the run's spool (or the store), compacted, in tree order.

Each trace becomes a list of compact span dicts in depth-first order (a parent, then each child's subtree, children
by start time), the order `evaltrace show` prints them in: concurrent evaluators' children stay under their own
evaluator instead of under whichever sibling started last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic_core import from_json, to_json

from ._spool import StoreError, read_spool
from ._usage import usage_of_span

__all__ = ('MAX_VALUE_CHARS', 'SHARED_REF', 'StoreError', 'cut', 'load_spans', 'share_repeated_values', 'tree_order')

MAX_VALUE_CHARS = 4000
"""A rendered attribute value longer than this (as JSON) is cut: whole tool schemas repeat on every model request."""
MAX_STACKTRACE_CHARS = 8000
# Attributes that only repeat what the page shows elsewhere: metrics summed on every ancestor, and an agent run's
# whole conversation (its model requests below carry the same messages). They are still in the store.
_DROPPED_ATTRIBUTES = frozenset({'logfire.metrics', 'pydantic_ai.all_messages'})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def cut(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """`value` unless its JSON is longer than `limit`; then its JSON text, cut, with how much was left out."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else to_json(value, fallback=str).decode()
    if len(text) <= limit:
        return value
    return f'{text[:limit]}… [{len(text) - limit:,} more characters]'


def load_spans(
    store_path: Path, trace_ids: Iterable[str], *, run_id: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The spans of each trace as compact dicts in tree order, ready for the page's waterfall.

    They were scrubbed when they were spooled (see `_spool.span_to_line`), with the same patterns, and are not
    scrubbed again: that doubled the cost of the page for large runs.

    The spans of run `run_id` are read from the spool it just wrote (no DuckDB at all, at the end of a run); the
    traces not found there come from the DuckDB store.

    Keys: `id`, `p` (index of the parent in the list, -1 for a root), `n` (message, else span name), `sn` (span
    name), `s` / `d` (start offset from the trace's first span and duration, in ms), `k` (kind), `l` (level),
    `a` (attributes), `x` (exception: type, message, stacktrace), `u` (own usage of a model request:
    input tokens, output tokens, cost).

    Raises:
        StoreError: The store is needed but missing, corrupt or locked.
    """
    wanted = {t for t in trace_ids if t}
    if not wanted:
        return {}
    by_trace: dict[str, list[tuple[Any, ...]]] = {}
    if run_id:
        for record in read_spool(store_path, run_id):
            trace_id = str(record.get('trace_id'))
            if trace_id in wanted:
                by_trace.setdefault(trace_id, []).append(_spool_row(record))
    missing = sorted(wanted - by_trace.keys())
    if missing and (store_path.exists() or not by_trace):
        for row in _store_rows(store_path, missing):
            by_trace.setdefault(str(row[0]), []).append(row)
    return {trace_id: _compact(tree_order(trace_rows)) for trace_id, trace_rows in by_trace.items()}


def tree_order(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of one trace depth first: each parent before its children, siblings by start (pure).

    A row is `(trace_id, span_id, parent_span_id, _, _, start_us, ...)`. A span whose parent is not in the trace
    (a span of a trace that started elsewhere, or a parent lost in a crash) is drawn as a root.
    """
    by_start = sorted(rows, key=lambda row: (int(row[5]), str(row[1])))
    ids = {str(row[1]) for row in by_start}
    children: dict[str | None, list[tuple[Any, ...]]] = {}
    for row in by_start:
        parent = str(row[2]) if row[2] and str(row[2]) in ids and row[2] != row[1] else None
        children.setdefault(parent, []).append(row)
    ordered: list[tuple[Any, ...]] = []
    stack = list(reversed(children.get(None, [])))
    seen: set[str] = set()
    while stack:
        row = stack.pop()
        span_id = str(row[1])
        if span_id in seen:
            continue
        seen.add(span_id)
        ordered.append(row)
        stack.extend(reversed(children.get(span_id, [])))
    # A cycle of parents (never from a real tracer) has no root: keep its spans rather than lose them.
    ordered.extend(row for row in by_start if str(row[1]) not in seen)
    return ordered


def _spool_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    # The same fields, in the same order, as `_store_rows` selects them.
    start = dt.datetime.fromisoformat(str(record.get('start_timestamp')))
    start_us = (start - _EPOCH) // dt.timedelta(microseconds=1)
    attributes = record.get('attributes')
    if not isinstance(attributes, dict):
        attributes = {}
    return (
        record.get('trace_id'), record.get('span_id'), record.get('parent_span_id'), record.get('span_name'),
        record.get('message'), start_us, record.get('duration'), record.get('level'), record.get('kind'),
        cast('dict[str, Any]', attributes), record.get('exception_type'),
        record.get('exception_message'), record.get('exception_stacktrace'),
    )  # fmt: skip


def _store_rows(store_path: Path, trace_ids: list[str]) -> list[tuple[Any, ...]]:
    from ._store import open_store  # DuckDB only when the spool does not have the spans

    con = open_store(store_path)
    try:
        return con.execute(
            'SELECT trace_id, span_id, parent_span_id, span_name, message, epoch_us(start_timestamp), duration, '
            'CAST(level AS VARCHAR), kind, CAST(attributes AS VARCHAR), exception_type, exception_message, '
            'exception_stacktrace FROM records WHERE list_contains(?, trace_id) '
            'ORDER BY trace_id, start_timestamp, span_id',
            [trace_ids],
        ).fetchall()
    finally:
        con.close()


def _compact(rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    t0 = min(int(row[5]) for row in rows)
    index = {str(row[1]): i for i, row in enumerate(rows)}
    spans: list[dict[str, Any]] = []
    for row in rows:
        raw = row[9]  # JSON text from DuckDB, already decoded from the spool
        decoded: Any = cast('dict[str, Any]', raw) if isinstance(raw, dict) else from_json(raw) if raw else {}
        attributes = cast('dict[str, Any]', decoded) if isinstance(decoded, dict) else {}
        usage = usage_of_span(attributes)
        shown = {k: v for k, v in attributes.items() if k not in _DROPPED_ATTRIBUTES}
        parent = index.get(str(row[2]), -1) if row[2] else -1
        span: dict[str, Any] = {
            'id': row[1],
            # `tree_order` put every parent first; a parent index after its child would be a cycle: drawn as a root.
            'p': parent if parent < len(spans) else -1,
            'n': str(row[4] or row[3] or ''),
            'sn': str(row[3] or ''),
            's': round((int(row[5]) - t0) / 1000, 3),
            'd': round(float(row[6] or 0.0) * 1000, 3),
            'k': row[8] or 'span',
            'l': row[7] or 'info',
            'a': {k: cut(v) for k, v in shown.items()},
        }
        if row[10] or row[11]:
            span['x'] = [str(row[10] or ''), str(row[11] or ''), str(row[12] or '')[-MAX_STACKTRACE_CHARS:]]
        if usage is not None:
            span['u'] = [usage.input_tokens, usage.output_tokens, usage.cost_usd]
        spans.append(span)
    return spans


SHARED_REF = '__et_ref__'
MIN_SHARED_CHARS = 200


def share_repeated_values(traces: Sequence[list[dict[str, Any]]]) -> list[Any]:
    """Move attribute values that occur more than once (tool schemas, system prompts, ...) to one shared table.

    Each long value that repeats is kept once; the spans' attributes then hold `{SHARED_REF: index}` in its place
    (the page resolves them when it opens a case). This keeps a large run's page several times smaller. The spans
    are changed in place; returns the table.
    """
    counts: dict[str, int] = {}
    found: list[tuple[dict[str, Any], str, str]] = []  # (attributes, name, key): each long value once
    for spans in traces:
        for span in spans:
            attributes = cast('dict[str, Any]', span['a'])
            for name, value in attributes.items():
                if isinstance(value, dict | list | str) and len(text := _key(value)) >= MIN_SHARED_CHARS:
                    counts[text] = counts.get(text, 0) + 1
                    found.append((attributes, name, text))
    table: list[Any] = []
    index: dict[str, int] = {}
    for attributes, name, text in found:
        if counts[text] > 1:
            if text not in index:
                index[text] = len(table)
                table.append(attributes[name])
            attributes[name] = {SHARED_REF: index[text]}
    return table


def _key(value: Any) -> str:
    # Prefixed, so that a string never shares an entry with a list or dict whose JSON it happens to equal.
    if isinstance(value, str):
        return 's' + value
    return 'j' + to_json(value, fallback=str).decode()
