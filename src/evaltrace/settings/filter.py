"""Selecting cases by their metadata: the `filter` setting's expressions, parsed and matched (pure).

    difficulty=hard                      a metadata key equals a value
    difficulty!=hard                     ...or does not (a case without the key differs from every value)
    tags=smoke                           a list matches if any element matches (tags are a metadata list)
    meta.level=2                         dotted paths into nested metadata; numbers compare as numbers
    difficulty=hard and not (tags=slow or meta.flaky=true)

Keys are words; a value is a word or a quoted string (`owner='Ann Lee'`). `and` binds tighter than `or`;
keywords are case-insensitive. `true`, `false` and `null` match booleans and None. The expression is matched
against the case's metadata as JSON-like data (a pydantic model or dataclass is converted first, see `collect.items`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = ('CaseFilter', 'FilterError', 'parse_filter')

_KEYWORDS = ('and', 'or', 'not')
_TOKEN = re.compile(r"""\s*(?:(?P<op>!=|=|\(|\))|(?P<quoted>'[^']*'|"[^"]*")|(?P<word>[^\s()=!'"]+)|(?P<bad>\S))""")


class FilterError(ValueError):
    """An expression that does not parse; the message is one line saying what is wrong and where."""


@dataclass(frozen=True)
class _Token:
    kind: str
    """`op`, `quoted`, `word` or `keyword`."""
    text: str
    column: int
    """1-based, in the expression."""


@dataclass(frozen=True)
class _Compare:
    path: tuple[str, ...]
    value: str
    negate: bool

    def matches(self, data: Any) -> bool:
        found = any(_equals(v, self.value) for v in _values(data, self.path))
        return not found if self.negate else found


@dataclass(frozen=True)
class _Not:
    inner: _Node

    def matches(self, data: Any) -> bool:
        return not self.inner.matches(data)


@dataclass(frozen=True)
class _All:
    parts: tuple[_Node, ...]

    def matches(self, data: Any) -> bool:
        return all(p.matches(data) for p in self.parts)


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Node, ...]

    def matches(self, data: Any) -> bool:
        return any(p.matches(data) for p in self.parts)


_Node = _Compare | _Not | _All | _Any


@dataclass(frozen=True)
class CaseFilter:
    """A parsed `filter` expression: `matches(metadata)` says whether a case is selected."""

    text: str
    root: _Node

    def matches(self, metadata: Any) -> bool:
        return self.root.matches(metadata)


def _values(data: Any, path: Sequence[str]) -> list[Any]:
    """Every value at `path` in `data`: lists fan out, and a key that itself holds dots is found too."""
    if not path:
        return [data]
    if isinstance(data, list | tuple):
        return [v for item in cast(Sequence[Any], data) for v in _values(item, path)]
    if not isinstance(data, Mapping):
        return []
    mapping = cast(Mapping[str, Any], data)
    out: list[Any] = []
    for cut in range(len(path), 0, -1):
        key = '.'.join(path[:cut])
        if key in mapping:
            out.extend(_values(mapping[key], path[cut:]))
    return out


def _equals(actual: Any, wanted: str) -> bool:
    if isinstance(actual, list | tuple):
        return any(_equals(a, wanted) for a in cast(Sequence[Any], actual))
    if isinstance(actual, bool):  # before int: a bool is an int
        return wanted.lower() == str(actual).lower()
    if actual is None:
        return wanted.lower() in ('null', 'none')
    if isinstance(actual, int | float):
        try:
            return float(wanted) == actual
        except ValueError:
            return False
    return str(actual) == wanted


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:  # trailing spaces
            continue
        value = match.group(kind)
        column = match.start(kind) + 1
        if kind == 'bad':
            if value in '\'"':
                raise FilterError(f'unterminated quote at column {column} of {text!r}')
            raise FilterError(f'unexpected {value!r} at column {column} of {text!r}')
        if kind == 'quoted':
            value = value[1:-1]
        elif kind == 'word' and value.lower() in _KEYWORDS:
            kind, value = 'keyword', value.lower()
        out.append(_Token(kind, value, column))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, kind: str, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind and token.text == text

    def where(self) -> str:
        token = self.peek()
        return f'at the end of {self.text!r}' if token is None else f'at column {token.column} of {self.text!r}'

    def column(self) -> int:
        token = self.peek()
        return len(self.text.rstrip()) + 1 if token is None else token.column

    def expression(self) -> _Node:
        parts = [self.conjunction()]
        while self.at('keyword', 'or'):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else _Any(tuple(parts))

    def conjunction(self) -> _Node:
        parts = [self.negation()]
        while self.at('keyword', 'and'):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def negation(self) -> _Node:
        if self.at('keyword', 'not'):
            self.take()
            return _Not(self.negation())
        return self.atom()

    def atom(self) -> _Node:
        if self.at('op', '('):
            self.take()
            inner = self.expression()
            if not self.at('op', ')'):
                self.fail_after_comparison(inside=True)
            self.take()
            return inner
        token = self.peek()
        if token is None or token.kind != 'word':
            raise FilterError(f'expected key=value {self.where()}')
        key = self.take()
        if not (self.at('op', '=') or self.at('op', '!=')):
            raise FilterError(f'expected = or != after {key.text!r} at column {self.column()}')
        op = self.take()
        value = self.peek()
        if value is None or value.kind == 'op':
            raise FilterError(f'expected a value after {op.text} at column {self.column()}')
        self.take()
        return _Compare(tuple(key.text.split('.')), value.text, negate=op.text == '!=')

    def fail_after_comparison(self, inside: bool) -> None:
        token = self.peek()
        if token is None:
            raise FilterError(f'expected ) {self.where()}')
        if token.kind == 'op' and token.text == ')' and not inside:
            raise FilterError(f'unexpected ) {self.where()}')
        raise FilterError(f'expected and, or or ) {self.where()}')


def parse_filter(text: str) -> CaseFilter:
    """Parse a `filter` expression; raise `FilterError` (one line: what is wrong, and where) if it does not parse."""
    if not text.strip():
        raise FilterError('empty expression')
    parser = _Parser(text)
    root = parser.expression()
    if parser.peek() is not None:
        parser.fail_after_comparison(inside=False)
    return CaseFilter(text.strip(), root)
