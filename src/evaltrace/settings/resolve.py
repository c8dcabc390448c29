"""Resolving the settings: one resolver for a pytest session and for the `evaltrace` commands.

Precedence, for every setting: command-line option, then environment variable, then the pytest ini key
`evaltrace_<name>` (pytest.ini, tox.ini, `[tool.pytest.ini_options]`), then `[tool.evaltrace]` in pyproject.toml,
then a standard variable where one exists (`OTEL_SERVICE_NAME` for service_name), then the default. A pytest session
reads the sources from its `Config` (`resolve_settings`, once, in `pytest_configure`); the `evaltrace` commands read
the same sources less pytest's command line, finding the rootdir and ini file as pytest would
(`resolve_cli_settings`). A value that does not parse raises `pytest.UsageError` naming the setting and where it
came from.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from ..judge.gates import gate_from_mapping
from .parse import FALSE_WORDS, TRUE_WORDS
from .table import SETTINGS, Setting
from .values import Settings

__all__ = (
    'Sources',
    'add_options',
    'check_table_keys',
    'find_rootdir_and_ini',
    'read_pyproject_table',
    'resolve',
    'resolve_cli_settings',
    'resolve_settings',
    'resolve_values',
)


@dataclass(frozen=True)
class Sources:
    """The raw values a resolution reads, each by setting name, in the order of precedence; then the rootdir."""

    options: Mapping[str, Any]
    """Values given on pytest's command line (absent or None: not given)."""
    env: Mapping[str, str]
    """The environment, read through each setting's variable (and `fallback_env`)."""
    ini: Mapping[str, Any]
    """Values of the ini keys `evaltrace_<name>` (absent, None, '' or []: not set)."""
    table: Mapping[str, Any]
    """`[tool.evaltrace]` of the rootdir's pyproject.toml, its keys checked (`check_table_keys`)."""
    rootdir: Path


# --------------------------------------------------------------------------------------------------------------------
# Precedence


def _resolve_one(spec: Setting[Any], sources: Sources) -> tuple[Any, str]:
    env = sources.env
    candidates: list[tuple[str, Any]] = []
    if (cli := sources.options.get(spec.name)) is not None:
        candidates.append((f'option {spec.option}', cli))
    if spec.env and env.get(spec.env, '') != '':
        candidates.append((f'environment variable {spec.env}', env[spec.env]))
    if (ini := sources.ini.get(spec.name)) not in (None, [], ''):
        candidates.append((f'ini key {spec.ini}', ini))
    if spec.name in sources.table:
        candidates.append((f'[tool.evaltrace] {spec.name}', sources.table[spec.name]))
    if spec.fallback_env and env.get(spec.fallback_env, '') != '':
        candidates.append((f'environment variable {spec.fallback_env}', env[spec.fallback_env]))
    if not candidates:
        return spec.default, 'default'
    source, raw = candidates[0]
    try:
        return spec.parse(raw), source
    except (ValueError, TypeError) as e:
        raise pytest.UsageError(f'evaltrace: bad value for {spec.name} from {source}: {e}') from None


def resolve_values(
    cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any], table: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every setting's value and where it came from, by name (pure: paths stay as given)."""
    sources = Sources(options=cli, env=env, ini=ini, table=table, rootdir=Path())
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for spec in SETTINGS:
        values[spec.name], where[spec.name] = _resolve_one(spec, sources)
    return values, where


def resolve(sources: Sources) -> Settings:
    """The settings from these sources: each value resolved, its paths anchored at the rootdir, the session gate."""
    values, where = resolve_values(sources.options, sources.env, sources.ini, sources.table)
    rootdir = sources.rootdir

    def anchored(value: Any) -> Any:
        if not isinstance(value, Path):
            return value
        value = value.expanduser()
        return value if value.is_absolute() else rootdir / value

    gate_table = sources.table.get('gate')
    try:
        gate = gate_from_mapping(gate_table) if isinstance(gate_table, dict) else None  # pyright: ignore[reportUnknownArgumentType]
    except (ValueError, TypeError) as e:
        raise pytest.UsageError(f'evaltrace: bad [tool.evaltrace.gate] in {rootdir / "pyproject.toml"}: {e}') from None
    resolved = {name: anchored(value) for name, value in values.items()}
    return Settings(**resolved, gate=gate, rootdir=rootdir, sources=where)


# --------------------------------------------------------------------------------------------------------------------
# A pytest session: options and ini keys registered here, read from the Config


def add_options(parser: pytest.Parser) -> None:
    """Register every setting's option and ini key, with the help of its declaration and its other names."""
    group = parser.getgroup('evaltrace', 'evaltrace: eval suites with tracing')
    for spec in SETTINGS:
        names = f'default: {spec.default_text()}' + (f'; env {spec.env}' if spec.env else '')
        if spec.option is None:  # the ini key's help is then the one place `--help` shows the variable
            parser.addini(spec.ini, f'{spec.help} [{names}]', type=spec.ini_type, default=None)
            continue
        parser.addini(spec.ini, spec.help, type=spec.ini_type, default=None)
        help_text = f'{spec.help} [{names}; ini {spec.ini}]'
        if spec.switch:
            group.addoption(spec.option, action='store_true', dest=spec.ini, default=None, help=help_text)
            _add_explicit_bool_forms(group, spec.option, spec.ini)
        else:
            group.addoption(
                spec.option, action='store', dest=spec.ini, default=None, metavar=spec.metavar, help=help_text
            )


def _add_explicit_bool_forms(group: pytest.OptionGroup, option: str, dest: str) -> None:
    """Also accept `--flag=false` (and the other boolean words) for a flag that alone means true.

    An optional value (`nargs='?'`) would take the next word too, so `pytest --evaltrace-skip tests/` would read
    `tests/` as the value. argparse matches a whole option string before it splits at `=`, so each explicit form is
    registered as an exact, hidden option string instead; any other `--flag=value` stays argparse's usage error.
    """
    for words, value in ((TRUE_WORDS, 'true'), (FALSE_WORDS, 'false')):
        forms = [f'{option}={case(w)}' for w in words for case in (str.lower, str.title, str.upper)]
        group.addoption(*dict.fromkeys(forms), action='store_const', const=value, dest=dest, help=argparse.SUPPRESS)


def resolve_settings(config: pytest.Config, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings of a pytest session (once, in `pytest_configure`: readers use `settings_of`)."""
    sources = Sources(
        options={s.name: config.getoption(s.ini, None) for s in SETTINGS if s.option},
        env=os.environ if env is None else env,
        ini={s.name: config.getini(s.ini) for s in SETTINGS},
        table=read_pyproject_table(config.rootpath),
        rootdir=config.rootpath,
    )
    return resolve(sources)


# --------------------------------------------------------------------------------------------------------------------
# [tool.evaltrace] in pyproject.toml

# The one sub-table of `[tool.evaltrace]` that is not a setting: the session gate.
_TABLES = ('gate',)


def check_table_keys(table: Mapping[str, Any], where: str) -> None:
    """Reject a key of `[tool.evaltrace]` that is no setting (a typo would silently be ignored), naming a close one."""
    known = [spec.name for spec in SETTINGS] + list(_TABLES)
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f'; known keys: {", ".join(sorted(known))}'
        raise pytest.UsageError(f"evaltrace: unknown key '{key}' in [tool.evaltrace] of {where}{hint}")
    gate = table.get('gate')
    if gate is not None and not isinstance(gate, Mapping):
        raise pytest.UsageError(
            f'evaltrace: [tool.evaltrace] gate of {where} must be a table such as [tool.evaltrace.gate] '
            f'min_pass_rate = 0.9, got {gate!r}'
        )


def read_pyproject_table(rootdir: Path) -> dict[str, Any]:
    """The `[tool.evaltrace]` table of the rootdir's pyproject.toml, or an empty table."""
    path = rootdir / 'pyproject.toml'
    try:
        with path.open('rb') as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise pytest.UsageError(f'{path}: not valid TOML: {e}') from None
    table = data.get('tool', {}).get('evaltrace', {})
    if not isinstance(table, dict):
        raise pytest.UsageError(f'evaltrace: [tool.evaltrace] of {path} must be a table, got {table!r}')
    check_table_keys(table, str(path))  # pyright: ignore[reportUnknownArgumentType]
    return table  # pyright: ignore[reportUnknownVariableType]


# --------------------------------------------------------------------------------------------------------------------
# The `evaltrace` commands: no pytest Config, so the rootdir and ini file are found as pytest finds them


def resolve_cli_settings(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings `pytest` would resolve when run from `cwd` with no options: what the `evaltrace` commands use.

    The same sources and precedence as a pytest session, less the command line (each command has its own options):
    environment variable, ini key of the rootdir's ini file, `[tool.evaltrace]`, default.
    """
    rootdir, ini = find_rootdir_and_ini(Path.cwd() if cwd is None else cwd)
    sources = Sources(
        options={},
        env=os.environ if env is None else env,
        ini=ini,
        table=read_pyproject_table(rootdir),
        rootdir=rootdir,
    )
    return resolve(sources)


def _ini_section(path: Path) -> dict[str, Any] | None:
    """The pytest section of an ini file (None when the file has none), as pytest looks for it."""
    if path.name == 'pyproject.toml':
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding='utf-8'))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        options: Any = data.get('tool', {}).get('pytest', {}).get('ini_options')
        return cast('dict[str, Any]', options) if isinstance(options, dict) else None
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding='utf-8')
    except (OSError, configparser.Error):
        return None
    section = {'setup.cfg': 'tool:pytest'}.get(path.name, 'pytest')
    if parser.has_section(section):
        return dict(parser.items(section))
    # pytest.ini is pytest's even without a [pytest] section
    return {} if path.name in ('pytest.ini', '.pytest.ini') else None


def find_rootdir_and_ini(start: Path) -> tuple[Path, dict[str, Any]]:
    """The rootdir pytest picks when run from `start` without path arguments, and evaltrace's ini keys found there.

    pytest's rule: the first of `start` and its ancestors holding an ini file with a pytest section (pytest.ini,
    .pytest.ini, pyproject.toml, tox.ini, setup.cfg, in that order); failing that, the nearest folder with a
    setup.py, then with a pyproject.toml; failing that, `start`.
    """
    start = start.resolve()
    folders = [start, *start.parents]
    for folder in folders:
        for name in ('pytest.ini', '.pytest.ini', 'pyproject.toml', 'tox.ini', 'setup.cfg'):
            path = folder / name
            if path.is_file() and (section := _ini_section(path)) is not None:
                ini = {spec.name: section.get(spec.ini) for spec in SETTINGS}
                return folder, ini
    for marker in ('setup.py', 'pyproject.toml'):
        for folder in folders:
            if (folder / marker).is_file():
                return folder, {}
    return start, {}
