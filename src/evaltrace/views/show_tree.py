"""The span tree of a trace as `evaltrace show` prints it, the way Logfire's live view shows it.

Each line is a span with its duration; model requests carry their tokens and cost and every parent the sums below
it; tool calls show their arguments and result, model requests the newest input and the output messages
(truncated), failed spans their exception, and spans carrying evaluator results (`assertions`, `scores`, `labels`,
as pydantic-evals sets them) list those.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from ..results.usage import Usage, usage_of_span
from ..store.records import SpanRecord

__all__ = ('EVALUATION_KINDS', 'SpanNode', 'evaluation_lines', 'render_trace', 'short', 'span_tree')

EVALUATION_KINDS = ('assertions', 'scores', 'labels')
"""The span attributes (and report fields) that hold evaluator results."""


@dataclass
class SpanNode:
    """One span of a trace with its children, in start order."""

    span: SpanRecord
    children: list[SpanNode] = field(default_factory=list['SpanNode'])

    @property
    def usage(self) -> Usage | None:
        """This span's own usage when it is a model request."""
        return usage_of_span(self.span.attributes)

    def total_usage(self) -> Usage:
        """The usage of this span and every span below it."""
        total = Usage()
        for node in self.walk():
            if (usage := node.usage) is not None:
                total.add(usage)
        return total

    def walk(self) -> Iterator[SpanNode]:
        """This span, then its descendants depth-first."""
        yield self
        for child in self.children:
            yield from child.walk()


def span_tree(spans: Sequence[SpanRecord]) -> list[SpanNode]:
    """The root spans of a trace (usually one), each with its subtree; `spans` in start order."""
    nodes = {span.span_id: SpanNode(span) for span in spans}
    roots: list[SpanNode] = []
    for node in nodes.values():  # spans came in start order, so children lists are in start order too
        parent_id = node.span.parent_span_id
        parent = nodes.get(parent_id) if parent_id else None
        (parent.children if parent is not None else roots).append(node)
    return roots


# --- rendering ---------------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f'{seconds * 1000:.0f}ms' if seconds >= 0.001 else f'{seconds * 1000:.2f}ms'
    return f'{seconds:.2f}s'


def _cost(usd: float) -> str:
    # Model requests often cost fractions of a cent: keep two significant digits down to 1e-8 USD.
    return f'${usd:.{6 if usd >= 0.001 else 8}f}'.rstrip('0').rstrip('.') if usd else '$0'


def _usage_text(usage: Usage, *, total: bool) -> str:
    parts = [f'{usage.requests} req'] if total else []
    parts.append(f'{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens')
    if usage.cost_usd:
        parts.append(_cost(usage.cost_usd))
    return ('Σ ' if total else '') + ' · '.join(parts)


def short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + '…'


def _message_line(message: Mapping[str, Any], limit: int) -> str:
    parts: list[str] = []
    for part in cast('Sequence[Any]', message.get('parts') or []):
        if not isinstance(part, dict):
            continue
        part = cast('dict[str, Any]', part)
        kind = part.get('type')
        if kind == 'tool_call':
            parts.append(f'→ {part.get("name")}({short(part.get("arguments", ""), limit)})')
        elif kind == 'tool_call_response':
            parts.append(f'← {part.get("name") or "tool"}: {short(part.get("result", ""), limit)}')
        elif kind == 'thinking':
            parts.append(f'(thinking) {short(part.get("content", ""), limit)}')
        elif 'content' in part:
            parts.append(short(part['content'], limit))
        else:
            parts.append(f'[{kind}]')
    return short(f'{message.get("role", "?")}: ' + ' '.join(parts), limit)


def _messages(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [cast('Mapping[str, Any]', m) for m in cast('list[Any]', value) if isinstance(m, dict)]


def evaluation_lines(attributes: Mapping[str, Any], limit: int) -> list[str]:
    lines: list[str] = []
    for kind in EVALUATION_KINDS:
        results = attributes.get(kind)
        if isinstance(results, str):
            try:
                results = json.loads(results)
            except ValueError:
                continue
        if not isinstance(results, dict):
            continue
        for name, result in cast('dict[str, Any]', results).items():
            result_dict = cast('dict[str, Any]', result) if isinstance(result, dict) else {'value': result}
            value = result_dict.get('value')
            reason = result_dict.get('reason')
            tail = f' — {short(reason, limit)}' if reason else ''
            if kind == 'assertions':
                lines.append(f'{"✔" if value is True else "✗"} {name}{tail}')
            else:
                lines.append(f'{kind[:-1]} {name}: {short(value, limit)}{tail}')
    return lines


def _details(node: SpanNode, limit: int) -> list[str]:
    span = node.span
    attributes = span.attributes
    lines: list[str] = []
    tool = attributes.get('gen_ai.tool.name')
    if tool is not None and node.usage is None:
        arguments = attributes.get('gen_ai.tool.call.arguments', attributes.get('tool_arguments'))
        result = attributes.get('gen_ai.tool.call.result', attributes.get('tool_response'))
        line = f'{tool}({short(arguments if arguments is not None else "", limit)})'
        if result is not None:
            line += f' → {short(result, limit)}'
        lines.append(line)
    if node.usage is not None:
        inputs = _messages(attributes.get('gen_ai.input.messages'))
        if inputs:
            lines.append(_message_line(inputs[-1], limit))  # the newest message; earlier ones were shown before
        lines.extend(_message_line(m, limit) for m in _messages(attributes.get('gen_ai.output.messages')))
    if span.exception_type:
        lines.append(f'✗ {span.exception_type}: {short(span.exception_message or "", limit)}')
    lines.extend(evaluation_lines(attributes, limit))
    return lines


def _label(node: SpanNode) -> str:
    span = node.span
    label = span.message or span.span_name
    if span.kind == 'log':
        return f'{span.level}: {label}' if span.level != 'info' else label
    parts = [label, _duration(span.duration)]
    if (own := node.usage) is not None:
        parts.append(_usage_text(own, total=False))
    else:
        total = node.total_usage()
        if total.requests:
            parts.append(_usage_text(total, total=True))
    return '  '.join(parts)


def render_trace(roots: Sequence[SpanNode], out: TextIO, *, max_chars: int = 160) -> None:
    """Write the span tree of a trace to `out`, one span per line with indented details."""

    def emit(node: SpanNode, prefix: str, connector: str, child_prefix: str) -> None:
        out.write(f'{prefix}{connector}{_label(node)}\n')
        detail_prefix = prefix + child_prefix + ('│  ' if node.children else '   ')
        for line in _details(node, max_chars):
            out.write(f'{detail_prefix}{line}\n')
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            emit(child, prefix + child_prefix, '└─ ' if last else '├─ ', '   ' if last else '│  ')

    for root in roots:
        emit(root, '', '', '')
