"""The settings of a session as its readers see them: a frozen `Settings`, resolved once at configure time.

`plugin.pytest_configure` resolves them (`settings.resolve`) and keeps them under `SETTINGS_KEY`; every reader takes
them from there (`settings_of`), nobody resolves again. Each setting is declared once in `settings.table`, which
derives its option, environment variable and ini key from its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from ..judge.gates import Gate
from .filter import CaseFilter

__all__ = (
    'HTML_TRACES',
    'PROGRESS_MODES',
    'RECORD_CHOICES',
    'SETTINGS_KEY',
    'TABLE_MODES',
    'HtmlTraces',
    'ProgressMode',
    'RecordMode',
    'Settings',
    'TableMode',
    'record_mode',
    'settings_of',
    'shell_quoted',
    'show_command',
    'show_options',
    'suite_record_mode',
)

RecordMode = Literal['none', 'once', 'new', 'all']
RECORD_OFF = 'off'
"""The default record mode: live, no cassette read or written."""
RECORD_CHOICES = (RECORD_OFF, 'none', 'once', 'new', 'all')

TableMode = Literal['none', 'failures', 'all']
TABLE_MODES = ('none', 'failures', 'all')

HtmlTraces = Literal['failures', 'all']
HTML_TRACES = ('failures', 'all')

ProgressMode = Literal['auto', 'live', 'plain', 'off']
PROGRESS_MODES = ('auto', 'live', 'plain', 'off')


@dataclass(frozen=True)
class Settings:
    """Every evaltrace setting, resolved: one field per entry of `settings.table.SETTINGS`, in its order, then what
    no single source gives (`gate`, `rootdir`, `sources`). Paths are absolute (relative ones are taken from the
    rootdir). What each setting means is in its declaration."""

    report: Path
    max_concurrency: int
    session_concurrency: int
    service_name: str
    environment: str
    instrument_pydantic_ai: bool
    instrument_httpx: bool
    project_url: str | None
    trace_url_template: str | None
    timeout: float | None
    skip: bool
    store: Path | None
    retention: int
    html: Path | None
    html_traces: HtmlTraces
    record: RecordMode | None
    """None: off, live (the default)."""
    table: TableMode
    progress: ProgressMode
    cassettes: Path
    baseline: Path
    markdown: Path | None
    shard: tuple[int, int]
    filter: CaseFilter | None
    """The cases selected by metadata (None: every case)."""
    retry_attempts: int
    retry_max_delay: float
    rate_limit_rpm: float
    rate_limit_tpm: float
    rescore: str | None
    """The run id whose stored outputs a re-scoring session evaluates (see run.rescore)."""
    max_value_chars: int
    scrub_patterns: tuple[str, ...]
    gate: Gate | None
    """The session gate, `[tool.evaltrace.gate]` of pyproject.toml."""
    rootdir: Path
    sources: Mapping[str, str] = field(default_factory=dict[str, str])
    """Where each setting's value came from (`option --evaltrace-x`, `environment variable EVALTRACE_X`, ...,
    `default`), by setting name."""


SETTINGS_KEY = pytest.StashKey[Settings]()
"""The session's settings, in `config.stash` from `pytest_configure` on."""


def settings_of(config: pytest.Config) -> Settings:
    """The settings `pytest_configure` resolved for this session."""
    return config.stash[SETTINGS_KEY]


def record_mode(raw: Any) -> RecordMode | None:
    """A record mode from its name; None for `off` (live: no cassette is read or written)."""
    text = str(raw).strip().lower()
    if text not in RECORD_CHOICES:
        raise ValueError(f'expected one of {", ".join(RECORD_CHOICES)}, got {raw!r}')
    return None if text == RECORD_OFF else text  # pyright: ignore[reportReturnType]


def suite_record_mode(settings: Settings, suite_record: str | None) -> RecordMode | None:
    """The record mode of a suite's cases: the `record` setting when it was set anywhere (so that CI can force
    `none` or `off`), else the suite's own `record=`, else `off`."""
    if settings.sources.get('record', 'default') != 'default' or suite_record is None:
        return settings.record
    return record_mode(suite_record)


def shell_quoted(text: str) -> str:
    """`text` as one word for a POSIX shell, always quoted (as the HTML report's note quotes it too)."""
    return "'" + text.replace("'", "'\\''") + "'"


def show_options(settings: Settings) -> str:
    """The options `evaltrace show` needs to read this run (` --store … --report …`, or nothing), typed in the rootdir.

    It names the store and the report when pytest's command line set them: the command resolves every other source
    of a setting itself, but not pytest's options, and without them it reads another run, or none.
    """
    return ''.join(
        f' {flag} {shell_quoted(str(path))}'
        for name, flag, path in (('store', '--store', settings.store), ('report', '--report', settings.report))
        if path is not None and settings.sources.get(name, '').startswith('option')
    )


def show_command(settings: Settings, nodeid: str) -> str:
    """The `evaltrace show` command that prints a case's trace (see `show_options`)."""
    return f'evaltrace show{show_options(settings)} {shell_quoted(nodeid)}'
