"""What a reader sees when a case fails: the failure message, in each of pytest's `--tb` styles.

A task's traceback runs through pydantic-evals, evaltrace, pydantic-ai, pydantic-graph, anyio and asyncio: a tool
that raises inside an agent run is about 60 frames deep, of which two or three are the user's. The message keeps
the user's own frames and says how many library frames it hid, and from where; `--tb=long` and `--fulltrace` keep
every frame. The traceback is pydantic-evals' text (it keeps no exception object), so trimming works on that text.

Styles (pytest's `--tb`): `auto` and `native` trim; `long` keeps everything; `short` also drops the usage lines
and the frames' source lines; `line` is the message's first line, at the suite's location (see
`one_line_longrepr`); `no` prints nothing, as pytest does for any test.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import site
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from _pytest._code.code import ExceptionChainRepr, ReprFileLocation, ReprTraceback

from ..results.case import CaseResult
from ..results.usage import Usage
from .case import truncate

__all__ = (
    'failure_message',
    'library_of',
    'library_roots',
    'one_line_longrepr',
    'traceback_style',
    'trim_traceback',
)

_RUNS_THROUGH = ('evaltrace', 'pydantic_ai', 'pydantic_evals', 'pydantic_graph')
"""Packages a case runs through, named even when installed outside site-packages (an editable install)."""
_SHOWN_LIBRARIES = 4
"""Library names listed in a 'frames hidden' line; more are elided."""

_FRAME = re.compile(r'^(?P<prefix>[ |]*)File "(?P<path>[^"]*)", line \d+, in .*$')


def traceback_style(option: Any) -> str:
    """The `--tb` style from pytest's options (`config.option`); `--fulltrace` means `long`."""
    if getattr(option, 'fulltrace', False):
        return 'long'
    return str(getattr(option, 'tbstyle', 'auto') or 'auto')


@functools.cache
def library_roots() -> Mapping[str, str | None]:
    """Folders whose frames are not the user's code, each with the library name its frames show (None: the name
    is the first path component under the folder, e.g. `pydantic_ai` under site-packages, `asyncio` under the
    standard library)."""
    roots: dict[str, str | None] = {}
    paths = sysconfig.get_paths()
    for key in ('stdlib', 'platstdlib', 'purelib', 'platlib'):
        if key in paths:
            roots[os.path.join(paths[key], '')] = None
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        roots[os.path.join(folder, '')] = None
    for name in _RUNS_THROUGH:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            roots[os.path.join(folder, '')] = name
    return roots


def library_of(path: str, roots: Mapping[str, str | None]) -> str | None:
    """The library a frame's file belongs to, or None when it is the user's own code (pure).

    The longest matching root wins: site-packages lies inside the standard library's folder on many systems.
    """
    if path.startswith('<'):  # <frozen importlib._bootstrap>, <string>: the interpreter's own
        return 'python'
    best = max((root for root in roots if path.startswith(root)), key=len, default=None)
    if best is None:
        return None
    name = roots[best]
    if name is not None:
        return name
    first = path[len(best) :].split(os.sep, 1)[0]
    return first.removesuffix('.py') or 'python'


@dataclass(frozen=True)
class _Frame:
    prefix: str
    library: str | None
    lines: list[str]


def _hidden_line(prefix: str, frames: list[_Frame]) -> str:
    names = list(dict.fromkeys(f.library for f in frames if f.library is not None))
    shown = ', '.join(names[:_SHOWN_LIBRARIES]) + (', …' if len(names) > _SHOWN_LIBRARIES else '')
    count = f'{len(frames)} frame{"s" if len(frames) != 1 else ""}'
    return f'{prefix}… {count} hidden ({shown}): --tb=long shows them'


def _keep(frames: list[_Frame], locations_only: bool) -> list[str]:
    """One run of consecutive frames, the libraries' runs each replaced by one line."""
    own = [f.library is None for f in frames]
    if not any(own):
        own[-1] = True  # no frame of the user's: keep where it was raised
    out: list[str] = []
    hidden: list[_Frame] = []
    for frame, keep in zip(frames, own, strict=True):
        if not keep:
            hidden.append(frame)
            continue
        if hidden and not locations_only:
            out.append(_hidden_line(hidden[0].prefix, hidden))
        hidden = []
        out.extend(frame.lines[:1] if locations_only else frame.lines)
    if hidden and not locations_only:
        out.append(_hidden_line(hidden[0].prefix, hidden))
    return out


def trim_traceback(text: str, library: Callable[[str], str | None], *, locations_only: bool = False) -> str:
    """A formatted traceback with only the user's own frames (pure).

    Each run of library frames becomes one line naming how many were hidden and from which libraries; if no frame
    is the user's, the innermost is kept. Everything that is not a frame (the exception lines, chained and grouped
    exceptions' headers) is kept. `locations_only` keeps each frame's `File …` line alone and names no hidden ones.
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _FRAME.match(lines[i]) is None:
            out.append(lines[i])
            i += 1
            continue
        frames: list[_Frame] = []
        while i < len(lines) and (match := _FRAME.match(lines[i])) is not None:
            prefix = match['prefix']
            block = [lines[i]]
            i += 1
            # The frame's source line, its ^^^ markers and "[Previous line repeated …]" are indented under it.
            while i < len(lines) and _FRAME.match(lines[i]) is None:
                line = lines[i]
                if not (line.startswith(prefix + '  ') or line.startswith(prefix + '[Previous line repeated')):
                    break
                block.append(line)
                i += 1
            frames.append(_Frame(prefix, library(match['path']), block))
        out.extend(_keep(frames, locations_only))
    return '\n'.join(out)


def _usage_line(label: str, usage: Usage) -> str:
    note = usage.cost_note
    return (
        f'{label}: {usage.requests} request(s), {usage.input_tokens:,} input + {usage.output_tokens:,} output tokens, '
        f'${usage.cost_usd:.6f}' + (f' ({note})' if note else '')
    )


def _head(result: CaseResult) -> tuple[str, list[str]]:
    # A failure that repeats another (a cassette miss, and the task's exception that carries the same miss) is
    # shown once; the head is the first line of the first one: what pytest's short test summary shows.
    failures: list[str] = []
    for failure in result.failures:
        if not any(failure in shown or shown in failure for shown in failures):
            failures.append(failure)
    head = failures[0].splitlines()[0] if failures else result.status
    more = f' (+{len(failures) - 1} more)' if len(failures) > 1 else ''
    return f'case {result.case} {result.status}: {head}{more}', failures


def failure_message(
    result: CaseResult,
    local_hint: str | None = None,
    style: str = 'auto',
    library: Callable[[str], str | None] | None = None,
) -> str:
    """The message shown when a case fails: why, the case's inputs, expected against actual, usage and cost, the
    trace link, and the traceback (trimmed to the user's frames unless `style` is `long`)."""
    head, failures = _head(result)
    if style == 'line':
        return head
    lines = [head]
    if len(failures) > 1:
        lines.extend(f'  - {failure}' for failure in failures)
    elif failures:  # its first line is the head; the rest follows (a miss's diff)
        rest = failures[0].splitlines()[1:]
        lines.extend(rest if rest else [f'  - {failures[0]}'])
    if result.inputs is not None:
        lines.append(f'  inputs:   {truncate(json.dumps(result.inputs, default=repr))}')
    if result.expected_output is not None:
        lines.append(f'  expected: {truncate(json.dumps(result.expected_output, default=repr))}')
    if result.error is None or result.output is not None:
        lines.append(f'  actual:   {truncate(json.dumps(result.output, default=repr))}')
    if style != 'short':
        lines.append('  ' + _usage_line('task usage', result.task_usage))
        if result.judge_usage.requests:
            lines.append('  ' + _usage_line('judge usage', result.judge_usage))
    if result.trace_url:
        lines.append(f'  trace: {result.trace_url}')
    elif result.trace_id:
        lines.append(f'  trace id: {result.trace_id}')
    if local_hint:
        lines.append(f'  {local_hint}')
    tb = (result.error or {}).get('traceback') or ''
    if tb:
        if style != 'long':
            of = library or functools.partial(library_of, roots=library_roots())
            tb = trim_traceback(tb, of, locations_only=style == 'short')
        lines.append('')
        lines.append(tb.rstrip())
    return '\n'.join(lines)


def one_line_longrepr(path: str, lineno: int, message: str) -> ExceptionChainRepr:
    """A failure's report for `--tb=line`: pytest prints its crash line, `path:lineno: message`, and nothing else.

    A `pytest.fail` message has the location of the `pytest.fail` call (inside evaltrace); this one names the suite.
    It is pytest's own report type, so pytest-xdist carries it from a worker like any other.
    """
    crash = ReprFileLocation(path, lineno, message.splitlines()[0] if message else '')
    return ExceptionChainRepr([(ReprTraceback([], None, 'line'), crash, None)])
