"""Parsers of settings' raw values: text from an option, a variable or an ini file, or a TOML value, to a typed value.

Each raises ValueError (or TypeError) with a short reason, which the resolver turns into a one-line `pytest.UsageError`
naming the setting and where the value came from. A parser returns the value `Settings` holds, except that a `Path` is
still relative: the resolver anchors it at the rootdir. (`record_mode` lives in `settings.values`, next to
`suite_record_mode`, which parses a suite's own `record=` with it.)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..judge.gates import is_whole_number
from ..safety.bounds import MAX_VALUE_CHARS_CEILING
from .filter import CaseFilter, parse_filter
from .values import HTML_TRACES, PROGRESS_MODES, TABLE_MODES, HtmlTraces, ProgressMode, TableMode

__all__ = (
    'FALSE_WORDS',
    'TRACE_URL_PLACEHOLDERS',
    'TRUE_WORDS',
    'boolean',
    'case_filter',
    'html_traces',
    'non_negative_float',
    'optional_path',
    'optional_text',
    'path',
    'path_or_off',
    'patterns',
    'positive_float',
    'positive_int',
    'progress_mode',
    'shard',
    'table_mode',
    'text',
    'url_template',
    'value_chars',
)

TRUE_WORDS = ('1', 'true', 'yes', 'on')
FALSE_WORDS = ('0', 'false', 'no', 'off')


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in (*FALSE_WORDS, ''):
        return False
    raise ValueError(f'expected true or false, got {raw!r}')


def _whole_number(raw: Any, expected: str) -> int:
    # int() cuts 2.7 (a TOML float) to 2 and takes true as 1: a count given as anything but a whole number is a
    # mistake to name, not a value to round. Text (an option, a variable, an ini key) is parsed as an integer.
    if is_whole_number(raw) or isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass
    raise ValueError(f'expected {expected}, got {raw!r}')


def positive_int(raw: Any) -> int:
    value = _whole_number(raw, 'a whole number >= 1')
    if value < 1:
        raise ValueError(f'expected a whole number >= 1, got {raw!r}')
    return value


def _finite_float(raw: Any) -> float:
    # float() takes true as 1.0: a boolean is no number of seconds or requests.
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f'expected a number, got {raw!r}')
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f'expected a number, got {raw!r}') from None
    # float() takes 'nan' and 'inf': a NaN timeout times out every case, an infinite back-off hangs the run.
    if not math.isfinite(value):
        raise ValueError(f'expected a finite number, got {raw!r}')
    return value


def positive_float(raw: Any) -> float:
    value = _finite_float(raw)
    if value <= 0:
        raise ValueError(f'expected a number > 0, got {raw!r}')
    return value


def non_negative_float(raw: Any) -> float:
    value = _finite_float(raw)
    if value < 0:
        raise ValueError(f'expected a number >= 0, got {raw!r}')
    return value


def value_chars(raw: Any) -> int:
    expected = f'a whole number from 100 to {MAX_VALUE_CHARS_CEILING:,}'
    value = _whole_number(raw, expected)
    if not 100 <= value <= MAX_VALUE_CHARS_CEILING:
        raise ValueError(f'expected {expected}, got {raw!r}')
    return value


def text(raw: Any) -> str:
    return str(raw)


def optional_text(raw: Any) -> str | None:
    """Text, with an empty value meaning none."""
    return str(raw) or None


def path(raw: Any) -> Path:
    return Path(str(raw))


def optional_path(raw: Any) -> Path | None:
    """A path, with an empty value meaning none."""
    return Path(str(raw)) if str(raw) else None


def path_or_off(raw: Any) -> Path | None:
    """A path, or None for `off` (also `none`, `false` and an empty value): a file that is not written."""
    value = str(raw)
    return None if value.lower() in ('', 'off', 'none', 'false') else Path(value)


def table_mode(raw: Any) -> TableMode:
    value = str(raw)
    if value not in TABLE_MODES:
        raise ValueError(f'expected one of {", ".join(TABLE_MODES)}, got {raw!r}')
    return value  # pyright: ignore[reportReturnType]


def html_traces(raw: Any) -> HtmlTraces:
    value = str(raw).strip().lower()
    if value not in HTML_TRACES:
        raise ValueError(f'expected one of {", ".join(HTML_TRACES)}, got {raw!r}')
    return value  # pyright: ignore[reportReturnType]


def progress_mode(raw: Any) -> ProgressMode:
    value = str(raw).strip().lower()
    if value not in PROGRESS_MODES:
        raise ValueError(f'expected one of {", ".join(PROGRESS_MODES)}, got {raw!r}')
    return value  # pyright: ignore[reportReturnType]


def shard(raw: Any) -> tuple[int, int]:
    try:
        i, n = (int(part) for part in str(raw).split('/'))
    except ValueError:
        raise ValueError(f'expected i/n such as 1/4, got {raw!r}') from None
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f'expected i/n with 1 <= i <= n, got {raw!r}')
    return i, n


def case_filter(raw: Any) -> CaseFilter | None:
    expression = str(raw)
    return parse_filter(expression) if expression.strip() else None  # FilterError is a ValueError


def patterns(raw: Any) -> tuple[str, ...]:
    """Regular expressions: a TOML list, an ini `linelist`, or text with one per line."""
    if isinstance(raw, str):
        found = tuple(p for p in (line.strip() for line in raw.splitlines()) if p)
    elif isinstance(raw, list | tuple):
        found = tuple(str(p) for p in raw)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    else:
        raise ValueError(f'expected a list of regular expressions, got {raw!r}')
    for pattern in found:  # compiled here, so that a bad one stops the run at start-up, not every case
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f'invalid regular expression {pattern!r} ({e})') from None
    return found


TRACE_URL_PLACEHOLDERS = ('trace_id', 'span_id')
_PLACEHOLDER = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')


def url_template(raw: Any) -> str | None:
    """A trace link template (an empty value meaning none)."""
    # Only the placeholders `trace.links.template_trace_url` fills; any other would stay literal in every link. Other
    # braces (JSON in a Grafana URL) are left alone, as the filling does.
    value = str(raw)
    unknown = [name for name in _PLACEHOLDER.findall(value) if name not in TRACE_URL_PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f'unknown placeholder {{{unknown[0]}}} in {raw!r}; the placeholders are {{trace_id}} and {{span_id}}'
        )
    return value or None
