"""The spans of the HTML report's waterfalls: the run's spans (see `store.records`), compacted, in tree order.

Each trace becomes a list of compact span dicts in depth-first order (a parent, then each child's subtree, children
by start time), the order `evaltrace show` prints them in: concurrent evaluators' children stay under their own
evaluator instead of under whichever sibling started last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic_core import to_json

from ..results.usage import usage_of_span
from ..store.records import SpanRecord, trace_spans

__all__ = ('MAX_VALUE_CHARS', 'SHARED_REF', 'cut', 'load_spans', 'share_repeated_values', 'tree_order')

MAX_VALUE_CHARS = 4000
"""A rendered attribute value longer than this (as JSON) is cut: whole tool schemas repeat on every model request."""
MAX_STACKTRACE_CHARS = 8000
_KEPT = frozenset({int, float, bool, type(None)})
# Attributes that only repeat what the page shows elsewhere: metrics summed on every ancestor, and an agent run's
# whole conversation (its model requests below carry the same messages). They are still in the store.
_DROPPED_ATTRIBUTES = frozenset({'logfire.metrics', 'pydantic_ai.all_messages'})


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

    They were scrubbed when they were spooled (see `store.spool.span_to_line`), with the same patterns, and are not
    scrubbed again: that doubled the cost of the page for large runs.

    The spans of run `run_id` are read from the spool it just wrote (no DuckDB at all, at the end of a run); the
    traces not found there come from the DuckDB store (see `store.records.trace_spans`).

    Keys: `id`, `p` (index of the parent in the list, -1 for a root), `n` (message, else span name), `sn` (span
    name), `s` / `d` (start offset from the trace's first span and duration, in ms), `k` (kind), `l` (level),
    `a` (attributes), `x` (exception: type, message, stacktrace), `u` (own usage of a model request:
    input tokens, output tokens, cost).

    Raises:
        StoreError: The store is needed but missing, corrupt or locked.
    """
    by_trace = trace_spans(store_path, trace_ids, run_id=run_id)
    return {trace_id: _compact(tree_order(spans)) for trace_id, spans in by_trace.items()}


def tree_order(spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """The spans of one trace depth first: each parent before its children, siblings by start (pure).

    A span whose parent is not in the trace (a span of a trace that started elsewhere, or a parent lost in a crash)
    is drawn as a root.
    """
    by_start = sorted(spans, key=lambda span: (span.start_us, span.span_id))
    ids = {span.span_id for span in by_start}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in by_start:
        parent = span.parent_span_id
        children.setdefault(parent if parent in ids and parent != span.span_id else None, []).append(span)
    ordered: list[SpanRecord] = []
    stack = list(reversed(children.get(None, [])))
    seen: set[str] = set()
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append(span)
        stack.extend(reversed(children.get(span.span_id, [])))
    # A cycle of parents (never from a real tracer) has no root: keep its spans rather than lose them.
    ordered.extend(span for span in by_start if span.span_id not in seen)
    return ordered


def _compact(spans: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    t0 = min(span.start_us for span in spans)
    index = {span.span_id: i for i, span in enumerate(spans)}
    out: list[dict[str, Any]] = []
    for span in spans:
        attributes = span.attributes
        usage = usage_of_span(attributes)
        parent = index.get(span.parent_span_id, -1) if span.parent_span_id else -1
        compact: dict[str, Any] = {
            'id': span.span_id,
            # `tree_order` put every parent first; a parent index after its child would be a cycle: drawn as a root.
            'p': parent if parent < len(out) else -1,
            'n': span.message or span.span_name,
            'sn': span.span_name,
            's': round((span.start_us - t0) / 1000, 3),
            'd': round(span.duration * 1000, 3),
            'k': span.kind,
            'l': span.level,
            # Most values are short strings and numbers: kept as they are, without a call (a large run has tens of
            # thousands); the rest are cut.
            'a': {
                k: v if type(v) in _KEPT or (type(v) is str and len(v) <= MAX_VALUE_CHARS) else cut(v)
                for k, v in attributes.items()
                if k not in _DROPPED_ATTRIBUTES
            },
        }
        if span.exception_type or span.exception_message:
            compact['x'] = [
                span.exception_type or '',
                span.exception_message or '',
                (span.exception_stacktrace or '')[-MAX_STACKTRACE_CHARS:],
            ]
        if usage is not None:
            compact['u'] = [usage.input_tokens, usage.output_tokens, usage.cost_usd]
        out.append(compact)
    return out


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
                if type(value) in _KEPT or (type(value) is str and len(value) < MIN_SHARED_CHARS):
                    continue  # never shared: most values, so without building their key
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
