"""`evaltrace show`: a case's trace from the local store, printed as a tree the way Logfire's live view shows it.

Each line is a span with its duration; model requests carry their tokens and cost and every parent the sums below
it; tool calls show their arguments and result, model requests the newest input and the output messages
(truncated), failed spans their exception, and spans carrying evaluator results (`assertions`, `scores`, `labels`,
as pydantic-evals sets them) list those.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import duckdb

from ._cli_settings import SettingOffError
from ._cli_settings import report_path as cli_report_path
from ._cli_settings import store_path as cli_store_path
from ._store import StoreError, open_store
from ._usage import Usage, usage_of_span

__all__ = (
    'ShowError',
    'SpanNode',
    'add_show_parser',
    'find_cases',
    'load_trace',
    'render_trace',
    'run_show',
    'show_command',
)

_FAILED = ('failed', 'error')
_TRACE_ID = re.compile(r'[0-9a-f]{8,32}')
_EVALUATION_KINDS = ('assertions', 'scores', 'labels')


class ShowError(Exception):
    """The target could not be resolved or shown; the message is one line for the user."""


@dataclass
class SpanNode:
    """One span of a trace with its children, in start order."""

    span_id: str
    parent_span_id: str | None
    span_name: str
    message: str
    start_us: int
    duration: float
    level: str
    kind: str
    attributes: dict[str, Any]
    exception_type: str | None = None
    exception_message: str | None = None
    children: list[SpanNode] = field(default_factory=list['SpanNode'])

    @property
    def usage(self) -> Usage | None:
        """This span's own usage when it is a model request."""
        return usage_of_span(self.attributes)

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


# --- reading -----------------------------------------------------------------------------------------------------


def resolve_trace_id(con: duckdb.DuckDBPyConnection, trace_id: str) -> str | None:
    """The full trace id for a full id or a unique prefix (8+ hex chars); None when no trace matches."""
    rows = con.execute(
        'SELECT DISTINCT trace_id FROM records WHERE starts_with(trace_id, ?) LIMIT 2', [trace_id.lower()]
    ).fetchall()
    if len(rows) > 1:
        raise ShowError(f'trace id prefix {trace_id!r} matches several traces; give more characters')
    return str(rows[0][0]) if rows else None


def load_trace(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[SpanNode]:
    """The root spans of a trace (usually one), each with its subtree; [] when the store has no such trace."""
    rows = con.execute(
        'SELECT span_id, parent_span_id, span_name, message, epoch_us(start_timestamp), duration, '
        'CAST(level AS VARCHAR), kind, CAST(attributes AS VARCHAR), exception_type, exception_message '
        'FROM records WHERE trace_id = ? ORDER BY start_timestamp, span_id',
        [trace_id],
    ).fetchall()
    nodes: dict[str, SpanNode] = {}
    for row in rows:
        attributes: Any = json.loads(row[8]) if row[8] else {}
        nodes[row[0]] = SpanNode(
            span_id=row[0],
            parent_span_id=row[1],
            span_name=row[2] or '',
            message=row[3] or '',
            start_us=int(row[4]),
            duration=float(row[5] or 0.0),
            level=row[6] or 'info',
            kind=row[7] or 'span',
            attributes=cast('dict[str, Any]', attributes) if isinstance(attributes, dict) else {},
            exception_type=row[9],
            exception_message=row[10],
        )
    roots: list[SpanNode] = []
    for node in nodes.values():  # rows came in start order, so children lists are in start order too
        parent = nodes.get(node.parent_span_id) if node.parent_span_id else None
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


def _short(value: Any, limit: int) -> str:
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
            parts.append(f'→ {part.get("name")}({_short(part.get("arguments", ""), limit)})')
        elif kind == 'tool_call_response':
            parts.append(f'← {part.get("name") or "tool"}: {_short(part.get("result", ""), limit)}')
        elif kind == 'thinking':
            parts.append(f'(thinking) {_short(part.get("content", ""), limit)}')
        elif 'content' in part:
            parts.append(_short(part['content'], limit))
        else:
            parts.append(f'[{kind}]')
    return _short(f'{message.get("role", "?")}: ' + ' '.join(parts), limit)


def _messages(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [cast('Mapping[str, Any]', m) for m in cast('list[Any]', value) if isinstance(m, dict)]


def _evaluation_lines(attributes: Mapping[str, Any], limit: int) -> list[str]:
    lines: list[str] = []
    for kind in _EVALUATION_KINDS:
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
            tail = f' — {_short(reason, limit)}' if reason else ''
            if kind == 'assertions':
                lines.append(f'{"✔" if value is True else "✗"} {name}{tail}')
            else:
                lines.append(f'{kind[:-1]} {name}: {_short(value, limit)}{tail}')
    return lines


def _details(node: SpanNode, limit: int) -> list[str]:
    attributes = node.attributes
    lines: list[str] = []
    tool = attributes.get('gen_ai.tool.name')
    if tool is not None and node.usage is None:
        arguments = attributes.get('gen_ai.tool.call.arguments', attributes.get('tool_arguments'))
        result = attributes.get('gen_ai.tool.call.result', attributes.get('tool_response'))
        line = f'{tool}({_short(arguments if arguments is not None else "", limit)})'
        if result is not None:
            line += f' → {_short(result, limit)}'
        lines.append(line)
    if node.usage is not None:
        inputs = _messages(attributes.get('gen_ai.input.messages'))
        if inputs:
            lines.append(_message_line(inputs[-1], limit))  # the newest message; earlier ones were shown before
        lines.extend(_message_line(m, limit) for m in _messages(attributes.get('gen_ai.output.messages')))
    if node.exception_type:
        lines.append(f'✗ {node.exception_type}: {_short(node.exception_message or "", limit)}')
    lines.extend(_evaluation_lines(attributes, limit))
    return lines


def _label(node: SpanNode) -> str:
    label = node.message or node.span_name
    if node.kind == 'log':
        return f'{node.level}: {label}' if node.level != 'info' else label
    parts = [label, _duration(node.duration)]
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


# --- resolving the target ----------------------------------------------------------------------------------------


def _case_entries(data: Any) -> Iterator[dict[str, Any]]:
    # The report's layout may grow; a case is any object with a `nodeid` and a `trace_id` key.
    if isinstance(data, dict):
        data = cast('dict[str, Any]', data)
        if 'nodeid' in data and 'trace_id' in data:
            yield data
            return
        for value in data.values():
            yield from _case_entries(value)
    elif isinstance(data, list):
        for value in cast('list[Any]', data):
            yield from _case_entries(value)


def _read_report(report_path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(report_path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ShowError(f'no report at {report_path}; run your evals with pytest first, or pass a trace id') from None
    except (OSError, ValueError) as e:
        raise ShowError(f'{report_path}: not a readable JSON report ({e})') from None
    from ._shape import report_shape_problem

    # A report evaltrace wrote is checked against its schema; other JSON is searched for case entries, whose fields
    # read here must still have their types.
    written = isinstance(data, dict) and cast('dict[str, Any]', data).get('tool') == 'evaltrace'
    if written and (problem := report_shape_problem(data)) is not None:
        raise ShowError(f'{report_path}: not a valid evaltrace report: {problem}')
    cases = list(_case_entries(data))
    for case in cases:
        for key in ('nodeid', 'case', 'status', 'trace_id'):
            value = case.get(key)
            if value is not None and not isinstance(value, str):
                raise ShowError(f"{report_path}: not a valid evaltrace report: a case's {key} is {value!r}")
    return cases


def _pytest_escaped(text: str) -> str:
    # What pytest does to a parametrize id (`_pytest.compat.ascii_escaped`): `café` becomes `caf\xe9` in node ids.
    escaped = text.encode('unicode_escape').decode('ascii')
    return escaped.translate({i: f'\\x{i:02x}' for i in (*range(32), 127)})


def _nodeid_forms(target: str) -> tuple[str, ...]:
    """A node id as typed, and as pytest spells it (non-ASCII characters of the parameter id escaped)."""
    forms = [target]
    head, bracket, params = target.partition('[')
    if bracket and not params.isascii():
        forms.append(head + bracket + _pytest_escaped(params))
    return tuple(forms)


def find_cases(report_path: Path, target: str | None) -> list[dict[str, Any]]:
    """Cases of the report: the failed/errored ones (target None), else the one matching a node id or case name.

    A target matches a case whose node id equals it, else ends with it (e.g. `test_fn[case]`), else whose case name
    equals it, else whose node id contains it.

    Raises:
        ShowError: No report, no match, or several matches.
    """
    cases = _read_report(report_path)
    if target is None:
        return [c for c in cases if c.get('status') in _FAILED]
    forms = _nodeid_forms(target)
    for matches in (
        [c for c in cases if c.get('nodeid') in forms],
        [c for c in cases if str(c.get('nodeid', '')).endswith(forms)],
        [c for c in cases if c.get('case') == target],
        [c for c in cases if any(form in str(c.get('nodeid', '')) for form in forms)],
    ):
        if len(matches) == 1:
            return matches
        if matches:
            listed = ', '.join(str(c.get('nodeid')) for c in matches[:3])
            raise ShowError(
                f'{target!r} matches {len(matches)} cases in {report_path} ({listed}, ...); be more precise'
            )
    raise ShowError(f'no case {target!r} in {report_path}')


def _header(case: Mapping[str, Any] | None, trace_id: str) -> str:
    if case is None:
        return f'trace {trace_id}'
    return f'{case.get("nodeid")}  {str(case.get("status", "")).upper()}  trace {trace_id}'


def _show_one(
    con: duckdb.DuckDBPyConnection, trace_id: str, case: Mapping[str, Any] | None, out: TextIO, max_chars: int
) -> None:
    roots = load_trace(con, trace_id)
    if not roots:
        what = f' (case {case.get("nodeid")})' if case is not None else ''
        raise ShowError(f'trace {trace_id}{what} is not in the store; it may be older than the runs kept')
    out.write(_header(case, trace_id) + '\n')
    render_trace(roots, out, max_chars=max_chars)
    # The report's evaluator results, unless the spans already showed them.
    has_span_results = any(k in n.attributes for r in roots for n in r.walk() for k in _EVALUATION_KINDS)
    if case is not None and not has_span_results:
        lines = _evaluation_lines(case, max_chars)
        failures = case.get('evaluator_failures')
        for failure in cast('list[Any]', failures) if isinstance(failures, list) else []:
            if isinstance(failure, dict):
                failure = cast('dict[str, Any]', failure)
                lines.append(f'✗ {failure.get("name")} raised: {_short(failure.get("error_message", ""), max_chars)}')
        if lines:
            out.write('evaluators\n')
            out.writelines(f'   {line}\n' for line in lines)


def run_show(
    target: str | None,
    *,
    last_failed: bool = False,
    store_path: Path | str | None = None,
    report_path: Path | str | None = None,
    keep_runs: int | None = None,
    max_chars: int = 160,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the trace of a case (node id or case name, looked up in the JSON report), of a trace id, or of every
    failed case of the last run; returns the exit status (errors are one line on `err`, status 1).
    """
    out = cast('TextIO', sys.stdout) if out is None else out
    err = cast('TextIO', sys.stderr) if err is None else err
    try:
        store_path = cli_store_path(None if store_path is None else Path(store_path))
        report_path = cli_report_path(None if report_path is None else Path(report_path))
        if last_failed == (target is not None):
            raise ShowError('give either a case node id / trace id, or --last-failed')
        targets: list[tuple[str | None, dict[str, Any] | None]]
        if last_failed:
            failed = find_cases(report_path, None)
            if not failed:
                out.write(f'no failed case in {report_path}\n')
                return 0
            targets = [(cast('str | None', c.get('trace_id')), c) for c in failed]
        else:
            assert target is not None
            is_trace_id = _TRACE_ID.fullmatch(target.lower()) is not None
            try:
                case = find_cases(report_path, target)[0]
            except ShowError:
                if not is_trace_id:
                    raise
                targets = [(target, None)]
            else:
                targets = [(cast('str | None', case.get('trace_id')), case)]
        con = open_store(store_path, keep_runs=keep_runs, on_notice=lambda line: err.write(line + '\n'))
        try:
            status = 0
            for i, (trace_id, case) in enumerate(targets):
                if i:
                    out.write('\n')
                try:
                    _show_target(con, trace_id, case, store_path, out, max_chars)
                except ShowError as e:
                    if not last_failed:
                        raise
                    # One failed case without a stored trace must not hide the others.
                    err.write(f'evaltrace show: {e}\n')
                    status = 1
        finally:
            con.close()
    except (ShowError, StoreError, SettingOffError) as e:
        err.write(f'evaltrace show: {e}\n')
        return 1
    return status


def _show_target(
    con: duckdb.DuckDBPyConnection,
    trace_id: str | None,
    case: Mapping[str, Any] | None,
    store_path: Path | str,
    out: TextIO,
    max_chars: int,
) -> None:
    if not trace_id:
        assert case is not None
        raise ShowError(f'case {case.get("nodeid")} has no trace (status {case.get("status")})')
    full_id = resolve_trace_id(con, trace_id) if case is None else trace_id
    if full_id is None:
        raise ShowError(f'no trace {trace_id!r} in {store_path}')
    _show_one(con, full_id, case, out, max_chars)


def show_command(args: argparse.Namespace) -> int:
    """The handler `add_show_parser` registers: reads the parsed options and calls `run_show`."""
    return run_show(
        cast('str | None', args.target),
        last_failed=cast('bool', args.last_failed),
        store_path=cast('Path | None', args.store),
        report_path=cast('Path | None', args.report),
        max_chars=cast('int', args.max_chars),
    )


def add_show_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:  # pyright: ignore[reportPrivateUsage]
    """Register `evaltrace show`; the parser's `handler` default is `show_command(args) -> int`."""
    parser = subparsers.add_parser(
        'show',
        help="print a case's trace as a tree (spans, durations, tokens, cost, tools, messages, exceptions, evaluators)",
        description=(
            "Print a case's trace from the local trace store as a tree. The target is a case's node id (or its "
            'ending, e.g. "test_fn[case]", or the case name), looked up in the JSON report, or a trace id (or a '
            'unique prefix of 8+ characters); --last-failed shows every failed case of the last run.'
        ),
    )
    parser.add_argument('target', nargs='?', help='case node id, case name or trace id')
    parser.add_argument('--last-failed', action='store_true', help='show the failed cases of the last run')
    parser.add_argument(
        '--store',
        type=Path,
        help='trace store (default: the store setting, as pytest resolves it: .evaltrace/traces.duckdb)',
    )
    parser.add_argument(
        '--report',
        type=Path,
        help='JSON report (default: the report setting, as pytest resolves it: .evaltrace/report.json)',
    )
    parser.add_argument(
        '--max-chars', type=int, default=160, help='longest message, argument or result shown (default: %(default)s)'
    )
    parser.set_defaults(handler=show_command)
    return parser
