"""Bounds on what evaltrace stores per value: any task value becomes safe, finite JSON-able data.

A case's inputs, expected output, output and metadata are the user's objects, and so may be anything: bytes that
are not UTF-8, a dict that holds itself, an object whose `repr` raises, a 10 MB string, or a YAML alias bomb (a few
hundred bytes of anchors that expand to hundreds of megabytes once written out as JSON). `bound_value` turns each of
them into JSON-able data of at most about `max_chars` characters of JSON, and says where it cut or replaced
something with a marker (`[evaltrace: …]`), so the case keeps its verdict, its output and its trace link.

The walk spends a budget of characters and stops when it is spent, so its cost is bounded by the budget, not by the
size the value would have once expanded. Values are bounded before they are scrubbed (see `safety.scrub`), so scrubbing
regexes never run over more than the bound either.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from pydantic import BaseModel
from pydantic_core import from_json, to_json, to_jsonable_python

from ..span_attributes import attributes_of

__all__ = (
    'CIRCULAR',
    'DEFAULT_MAX_VALUE_CHARS',
    'MAX_VALUE_CHARS_CEILING',
    'BoundAttributesProcessor',
    'bound_text',
    'bound_value',
    'safe_repr',
    'was_cut',
)

DEFAULT_MAX_VALUE_CHARS = 20_000
"""Characters of JSON kept per stored value by default (the `max_value_chars` setting)."""
MAX_VALUE_CHARS_CEILING = 1_000_000
"""The most any value may keep, whatever the setting: what a value is cut to before the setting applies."""
CIRCULAR = '[evaltrace: circular reference]'
_MAX_DEPTH = 64


_CUT = re.compile(r'… \[evaltrace: truncated, ([\d,]+) more chars\]\Z')


def bound_text(text: str, max_chars: int) -> str:
    """`text`, cut to `max_chars` characters with a marker that says how much was cut (in all, if cut before)."""
    if len(text) <= max_chars:
        return text
    more = 0
    if (earlier := _CUT.search(text, max(len(text) - 60, 0))) is not None:  # cut twice: count from the original
        if earlier.start() <= max_chars:
            return text  # cut already, to no more than this
        more = int(earlier.group(1).replace(',', ''))
        text = text[: earlier.start()]
    return f'{text[:max_chars]}… [evaltrace: truncated, {len(text) - max_chars + more:,} more chars]'


_CUT_ITEMS = re.compile(r'\[evaltrace: truncated, [\d,]+ more items\]\Z')


def was_cut(value: Any) -> bool:
    """Whether a value read back from a report or the store was cut by `bound_text` or `bound_value`: it then
    holds one of their markers (a text's end, a mapping's key, a list's last item)."""
    if isinstance(value, str):
        return _CUT.search(value) is not None or _CUT_ITEMS.match(value) is not None
    if isinstance(value, Mapping):
        mapping = cast('Mapping[Any, Any]', value)
        return '[evaltrace: truncated]' in mapping or any(was_cut(k) or was_cut(v) for k, v in mapping.items())
    if isinstance(value, list):
        return any(was_cut(v) for v in cast('list[Any]', value))
    return False


def safe_repr(value: object, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> str:
    """`repr(value)`, bounded; a marker naming the type when `repr` itself raises."""
    try:
        return bound_text(repr(value), max_chars)
    except Exception as e:
        try:
            reason = f'{type(e).__name__}: {e}'
        except Exception:
            reason = type(e).__name__
        return f'[evaltrace: {type(value).__name__} object, repr raised {bound_text(reason, 200)}]'


class _Walk:
    """One bounded walk over a value: the characters left to spend, and the containers on the current path."""

    def __init__(self, max_chars: int) -> None:
        self.left = max_chars
        self.active: set[int] = set()

    def text(self, text: str) -> str:
        if len(text) > self.left:
            cut = bound_text(text, max(self.left, 0))
            self.left = 0
            return cut
        self.left -= len(text) + 2  # with its quotes
        return text

    def value(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool | int | float):
            self.left -= 6
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self.text(_bytes_text(bytes(cast('bytes', value)), self.left))
        if depth >= _MAX_DEPTH:
            self.left -= 40
            return f'[evaltrace: nested deeper than {_MAX_DEPTH} levels]'
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            container = cast('Mapping[Any, Any] | Sequence[Any]', value)
            if id(container) in self.active:  # a container that holds itself: JSON cannot
                self.left -= len(CIRCULAR)
                return CIRCULAR
            self.active.add(id(container))
            try:
                if isinstance(container, Mapping):
                    return self.mapping(container, depth)
                # A set's iteration order follows string hashing, which each process seeds anew: kept sorted, so
                # that its copy (and a digest of it, see `judge.case`) is the same in every process.
                return self.sequence(list(container), depth, ordered=isinstance(container, set | frozenset))
            finally:
                self.active.discard(id(container))
        # Anything else (pydantic models, dataclasses, dates, enums...) as pydantic serialises it, then walked. A
        # model or dataclass is opened one level at a time, so that a set inside it still reaches the walk as a set
        # (and is sorted) rather than as the list pydantic makes of it in this process's iteration order.
        try:
            converted = _fields(value)
        except Exception:  # a serialiser that fails in python mode: as pydantic serialises it to JSON, below
            converted = None
        try:
            if converted is None:
                converted = to_jsonable_python(value, fallback=lambda v: safe_repr(v, max(self.left, 0)))
        except Exception:  # non-UTF-8 bytes or a cycle inside a model: its repr instead
            return self.text(safe_repr(value, max(self.left, 0)))
        if isinstance(converted, str):
            return self.text(converted)
        return self.value(converted, depth + 1)

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if self.left <= 0:
                out['[evaltrace: truncated]'] = f'{len(value) - i:,} more items'
                break
            key = k if isinstance(k, str) else safe_repr(k, 200) if not isinstance(k, int | float | bool) else str(k)
            # The key first: in `out[a] = b`, Python evaluates `b` before `a`, and the value would spend the budget.
            key = self.text(key)
            out[key] = self.value(v, depth + 1)
        return out

    def sequence(self, items: list[Any], depth: int, ordered: bool = False) -> list[Any]:
        """The items' copies, sorted by their JSON text when `ordered`; a marker last when the budget ran out."""
        out: list[Any] = []
        cut = None
        for i, item in enumerate(items):
            if self.left <= 0:
                cut = f'[evaltrace: truncated, {len(items) - i:,} more items]'
                break
            out.append(self.value(item, depth + 1))
        if ordered:
            out.sort(key=to_json)
        if cut is not None:
            out.append(cut)
        return out


def _fields(value: Any) -> dict[str, Any] | None:
    """A pydantic model's or a dataclass instance's fields as a dict of their own values, else None."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode='python')  # its serialisers, aliases and exclusions apply, values left as they are
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _bytes_text(data: bytes, max_chars: int) -> str:
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        head = data[: max(max_chars // 4, 16)]
        more = f', first {len(head)}' if len(head) < len(data) else ''
        return f'[evaltrace: {len(data):,} bytes, not UTF-8{more}] {head!r}'


def bound_value(value: Any, max_chars: int = MAX_VALUE_CHARS_CEILING) -> Any:
    """A JSON-able copy of any value, of about `max_chars` characters of JSON at most, with markers where cut.

    Never raises: what cannot be serialised is replaced by a marker or a safe repr, and the rest is kept.
    """
    if isinstance(value, str) and len(value) <= max_chars:  # the common case, at no cost
        return value
    return _Walk(max_chars).value(value, 0)


class BoundAttributesProcessor(SpanProcessor):
    """Cuts over-long attribute values of each span as it starts, before logfire's scrubbing reads them.

    pydantic-evals puts a case's inputs on its span when it starts; a 10 MB input would otherwise cost logfire's
    scrubbing regexes seconds per span, and every exporter and the spool as much again. A JSON attribute (a dict or
    list, encoded by logfire) is bounded as data, so it stays valid JSON.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = attributes_of(span)
        long = [k for k, v in attributes.items() if isinstance(v, str) and len(v) > self.max_chars]
        for key in long:
            text = cast(str, attributes[key])
            if text[:1] in '{[':
                try:
                    span.set_attribute(key, to_json(bound_value(from_json(text), self.max_chars)).decode())
                    continue
                except ValueError:
                    pass
            span.set_attribute(key, bound_text(text, self.max_chars))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
