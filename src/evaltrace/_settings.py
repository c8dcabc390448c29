"""Settings, resolved once at configure time into a frozen `Settings`.

Precedence, for every setting: command-line option, then environment variable, then the pytest ini key
`evaltrace_<name>` (pytest.ini, tox.ini, `[tool.pytest.ini_options]`), then `[tool.evaltrace]` in pyproject.toml,
then a standard variable where one exists (`OTEL_SERVICE_NAME` for service_name), then the default. The `evaltrace`
commands resolve the same settings (`resolve_cli_settings`), less the command-line options of pytest. A value that does not parse raises `pytest.UsageError` naming the setting and where it came from.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

import pytest

from ._bounds import DEFAULT_MAX_VALUE_CHARS, MAX_VALUE_CHARS_CEILING
from ._filter import CaseFilter, parse_filter
from ._gates import Gate, gate_from_mapping

__all__ = (
    'PROGRESS_MODES',
    'RECORD_CHOICES',
    'SETTINGS',
    'ProgressMode',
    'RecordMode',
    'SettingSpec',
    'Settings',
    'add_options',
    'check_table_keys',
    'find_rootdir_and_ini',
    'record_mode',
    'resolve_cli_settings',
    'resolve_settings',
    'suite_record_mode',
)

T = TypeVar('T')
RecordMode = Literal['none', 'once', 'new', 'all']


_TRUE_WORDS = ('1', 'true', 'yes', 'on')
_FALSE_WORDS = ('0', 'false', 'no', 'off')


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE_WORDS:
        return True
    if text in (*_FALSE_WORDS, ''):
        return False
    raise ValueError(f'expected true or false, got {raw!r}')


def _positive_int(raw: Any) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(f'expected a whole number >= 1, got {raw!r}')
    return value


def _finite_float(raw: Any) -> float:
    # float() takes 'nan' and 'inf': a NaN timeout times out every case, an infinite back-off hangs the run.
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f'expected a finite number, got {raw!r}')
    return value


def _value_chars(raw: Any) -> int:
    value = int(raw)
    if not 100 <= value <= MAX_VALUE_CHARS_CEILING:
        raise ValueError(f'expected a whole number from 100 to {MAX_VALUE_CHARS_CEILING:,}, got {raw!r}')
    return value


def _positive_float(raw: Any) -> float:
    value = _finite_float(raw)
    if value <= 0:
        raise ValueError(f'expected a number > 0, got {raw!r}')
    return value


def _non_negative_float(raw: Any) -> float:
    value = _finite_float(raw)
    if value < 0:
        raise ValueError(f'expected a number >= 0, got {raw!r}')
    return value


def _str(raw: Any) -> str:
    return str(raw)


RECORD_OFF = 'off'
"""The default record mode: live, no cassette read or written."""
RECORD_CHOICES = ('off', 'none', 'once', 'new', 'all')


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


TableMode = Literal['none', 'failures', 'all']


def _table_mode(raw: Any) -> TableMode:
    text = str(raw)
    if text not in ('none', 'failures', 'all'):
        raise ValueError(f'expected one of none, failures, all, got {raw!r}')
    return text  # pyright: ignore[reportReturnType]


ProgressMode = Literal['auto', 'live', 'plain', 'off']
PROGRESS_MODES = ('auto', 'live', 'plain', 'off')


def _progress_mode(raw: Any) -> ProgressMode:
    text = str(raw).strip().lower()
    if text not in PROGRESS_MODES:
        raise ValueError(f'expected one of {", ".join(PROGRESS_MODES)}, got {raw!r}')
    return text  # pyright: ignore[reportReturnType]


def _shard(raw: Any) -> tuple[int, int]:
    text = str(raw)
    try:
        i, n = (int(part) for part in text.split('/'))
    except ValueError:
        raise ValueError(f'expected i/n such as 1/4, got {raw!r}') from None
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f'expected i/n with 1 <= i <= n, got {raw!r}')
    return i, n


def _case_filter(raw: Any) -> CaseFilter | None:
    text = str(raw)
    return parse_filter(text) if text.strip() else None  # FilterError is a ValueError: a one-line UsageError


def _patterns(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        patterns = tuple(p for p in (line.strip() for line in raw.splitlines()) if p)
    elif isinstance(raw, list | tuple):
        patterns = tuple(str(p) for p in raw)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    else:
        raise ValueError(f'expected a list of regular expressions, got {raw!r}')
    for pattern in patterns:  # compiled here, so that a bad one stops the run at start-up, not every case
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f'invalid regular expression {pattern!r} ({e})') from None
    return patterns


TRACE_URL_PLACEHOLDERS = ('trace_id', 'span_id')
_PLACEHOLDER = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')


def _url_template(raw: Any) -> str:
    # Only the placeholders `_links.template_trace_url` fills; any other would stay literal in every link. Other
    # braces (JSON in a Grafana URL) are left alone, as the filling does.
    text = str(raw)
    unknown = [name for name in _PLACEHOLDER.findall(text) if name not in TRACE_URL_PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f'unknown placeholder {{{unknown[0]}}} in {raw!r}; the placeholders are {{trace_id}} and {{span_id}}'
        )
    return text


@dataclass(frozen=True)
class SettingSpec(Generic[T]):
    """One setting: its name (ini key `evaltrace_<name>`, `[tool.evaltrace] <name>`), CLI flag, env var and parser."""

    name: str
    help: str
    parse: Callable[[Any], T]
    default: T
    flag: str | None = None
    env: str | None = None
    cli_action: str = 'store'
    metavar: str | None = None
    fallback_env: str | None = None
    """A standard variable read after every evaltrace source, before the default (OTEL_SERVICE_NAME)."""

    @property
    def dest(self) -> str:
        return f'evaltrace_{self.name}'


SETTINGS: tuple[SettingSpec[Any], ...] = (
    SettingSpec(
        'report',
        'Path of the JSON report.',
        _str,
        '.evaltrace/report.json',
        '--evaltrace-report',
        'EVALTRACE_REPORT',
        metavar='PATH',
    ),
    SettingSpec(
        'max_concurrency',
        'Default number of cases of one suite run at once (a suite may set its own).',
        _positive_int,
        8,
        '--evaltrace-max-concurrency',
        'EVALTRACE_MAX_CONCURRENCY',
        metavar='N',
    ),
    SettingSpec(
        'session_concurrency',
        'Number of cases run at once in the process (each xdist worker), across every suite run.',
        _positive_int,
        32,
        '--evaltrace-session-concurrency',
        'EVALTRACE_SESSION_CONCURRENCY',
        metavar='N',
    ),
    SettingSpec(
        'service_name',
        'Logfire service name, when evaltrace configures Logfire (OTEL_SERVICE_NAME, when set, wins over the default).',
        _str,
        'evals',
        '--evaltrace-service-name',
        'EVALTRACE_SERVICE_NAME',
        metavar='NAME',
        fallback_env='OTEL_SERVICE_NAME',
    ),
    SettingSpec(
        'environment',
        'Logfire deployment environment, when evaltrace configures Logfire.',
        _str,
        'evaluation',
        '--evaltrace-environment',
        'EVALTRACE_ENVIRONMENT',
        metavar='NAME',
    ),
    SettingSpec(
        'instrument_pydantic_ai',
        'Call logfire.instrument_pydantic_ai() (true/false).',
        _bool,
        True,
        '--evaltrace-instrument-pydantic-ai',
        'EVALTRACE_INSTRUMENT_PYDANTIC_AI',
        metavar='BOOL',
    ),
    SettingSpec(
        'instrument_httpx',
        'Call logfire.instrument_httpx() (true/false).',
        _bool,
        True,
        '--evaltrace-instrument-httpx',
        'EVALTRACE_INSTRUMENT_HTTPX',
        metavar='BOOL',
    ),
    SettingSpec(
        'project_url',
        'Logfire project URL for trace links (default: project_url in .logfire/logfire_credentials.json).',
        _str,
        '',
        '--evaltrace-project-url',
        'EVALTRACE_PROJECT_URL',
        metavar='URL',
    ),
    SettingSpec(
        'trace_url_template',
        'Trace link template with {trace_id} and {span_id} (no other placeholder), for any OpenTelemetry UI.',
        _url_template,
        '',
        '--evaltrace-trace-url',
        'EVALTRACE_TRACE_URL',
        metavar='TEMPLATE',
    ),
    SettingSpec(
        'timeout',
        'Per-case timeout in seconds, around task and evaluators (a suite may set its own).',
        _positive_float,
        0.0,
        '--evaltrace-timeout',
        'EVALTRACE_TIMEOUT',
        metavar='SECONDS',
    ),
    SettingSpec(
        'skip',
        'Skip every eval suite (run the rest of the test suite without the evals); --evaltrace-skip=false '
        'overrides a true from elsewhere.',
        _bool,
        False,
        '--evaltrace-skip',
        'EVALTRACE_SKIP',
        cli_action='store_true',
    ),
    SettingSpec(
        'store',
        'Path of the local trace store (DuckDB); off disables it.',
        _str,
        '.evaltrace/traces.duckdb',
        '--evaltrace-store',
        'EVALTRACE_STORE',
        metavar='PATH',
    ),
    SettingSpec(
        'retention',
        "How many runs the local trace store (and the HTML report's trends) keep.",
        _positive_int,
        20,
        '--evaltrace-retention',
        'EVALTRACE_RETENTION',
        metavar='N',
    ),
    SettingSpec(
        'html',
        'Path of the self-contained HTML report; off disables it.',
        _str,
        '.evaltrace/report.html',
        '--evaltrace-html',
        'EVALTRACE_HTML',
        metavar='PATH',
    ),
    SettingSpec(
        'record',
        'Record/replay of model traffic: off (live, no cassette), none (replay only), once, new or all '
        '(see the README). A suite may turn it on with @evaltrace.suite(record=...).',
        record_mode,
        None,
        '--evaltrace-record',
        'EVALTRACE_RECORD',
        metavar='MODE',
    ),
    SettingSpec(
        'table',
        "Show pydantic-evals' report table of each suite run in the summary: none, failures or all "
        '(compared with the baseline when there is one).',
        _table_mode,
        'none',
        '--evaltrace-table',
        'EVALTRACE_TABLE',
        metavar='WHICH',
    ),
    SettingSpec(
        'progress',
        'Progress of each running suite run (cases done, failures, spend): auto (live on a terminal, plain lines '
        'otherwise), live, plain or off.',
        _progress_mode,
        'auto',
        '--evaltrace-progress',
        'EVALTRACE_PROGRESS',
        metavar='MODE',
    ),
    SettingSpec(
        'cassettes',
        'Folder of the per-case cassettes.',
        _str,
        'evals/cassettes',
        '--evaltrace-cassettes',
        'EVALTRACE_CASSETTES',
        metavar='DIR',
    ),
    SettingSpec(
        'baseline',
        'Baseline report to compare against (skipped when the file does not exist).',
        _str,
        'evals/baseline.json',
        '--evaltrace-baseline',
        'EVALTRACE_BASELINE',
        metavar='PATH',
    ),
    SettingSpec(
        'markdown',
        'Also write the markdown summary to this path.',
        _str,
        '',
        '--evaltrace-markdown',
        'EVALTRACE_MARKDOWN',
        metavar='PATH',
    ),
    SettingSpec(
        'shard',
        'Run only shard i of n of the eval cases, e.g. 1/4.',
        _shard,
        (1, 1),
        '--evaltrace-shard',
        'EVALTRACE_SHARD',
        metavar='I/N',
    ),
    SettingSpec(
        'filter',
        'Run only the eval cases whose metadata matches EXPR, e.g. "difficulty=hard and not tags=slow": key=value, '
        'key!=value, and, or, not, parentheses, dotted keys (meta.level=2); a list matches if any element does. '
        'Applied after -k and before the shards split the cases; other tests are left alone.',
        _case_filter,
        None,
        '--evaltrace-filter',
        'EVALTRACE_FILTER',
        metavar='EXPR',
    ),
    SettingSpec(
        'retry_attempts',
        'Attempts per provider request inside eval cases (1 = evaltrace does not retry).',
        _positive_int,
        4,
        '--evaltrace-retry-attempts',
        'EVALTRACE_RETRY_ATTEMPTS',
        metavar='N',
    ),
    SettingSpec(
        'retry_max_delay',
        'Most seconds spent waiting between the retries of one provider request.',
        _non_negative_float,
        30.0,
        '--evaltrace-retry-max-delay',
        'EVALTRACE_RETRY_MAX_DELAY',
        metavar='SECONDS',
    ),
    SettingSpec(
        'rate_limit_rpm',
        'Requests per minute per model, shared by every case of the process (0 = no limit).',
        _non_negative_float,
        0.0,
        '--evaltrace-rate-limit-rpm',
        'EVALTRACE_RATE_LIMIT_RPM',
        metavar='N',
    ),
    SettingSpec(
        'rate_limit_tpm',
        'Tokens per minute per model (estimated from request size), shared like rate_limit_rpm (0 = no limit).',
        _non_negative_float,
        0.0,
        '--evaltrace-rate-limit-tpm',
        'EVALTRACE_RATE_LIMIT_TPM',
        metavar='N',
    ),
    SettingSpec(
        'rescore',
        'Re-score: re-run the current evaluators on the outputs and task spans stored by this run id, without '
        'calling the tasks (what `evaltrace rescore` runs).',
        _str,
        '',
        '--evaltrace-rescore',
        None,
        metavar='RUN_ID',
    ),
    SettingSpec(
        'max_value_chars',
        "Characters of JSON kept per stored value (a case's inputs, expected output, output, metadata, each failure "
        'message and span attribute); the rest is cut with a marker.',
        _value_chars,
        DEFAULT_MAX_VALUE_CHARS,
        '--evaltrace-max-value-chars',
        'EVALTRACE_MAX_VALUE_CHARS',
        metavar='N',
    ),
    SettingSpec(
        'scrub_patterns',
        'Extra regular expressions whose matches are scrubbed from traces, reports and cassettes.',
        _patterns,
        (),
        None,
        'EVALTRACE_SCRUB_PATTERNS',
    ),
)


@dataclass(frozen=True)
class Settings:
    """Every evaltrace setting, resolved. Paths are absolute (relative ones are taken from the rootdir)."""

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
    scrub_patterns: tuple[str, ...]
    max_value_chars: int
    retry_attempts: int
    retry_max_delay: float
    rate_limit_rpm: float
    rate_limit_tpm: float
    gate: Gate | None
    rootdir: Path
    sources: Mapping[str, str] = field(default_factory=dict[str, str])
    rescore: str | None = None
    """The run id whose stored outputs a re-scoring session evaluates (see _rescore)."""


def add_options(parser: pytest.Parser) -> None:
    """Register every setting's CLI option and ini key."""
    group = parser.getgroup('evaltrace', 'evaltrace: eval suites with tracing')
    for spec in SETTINGS:
        help_text = spec.help + (f' [env {spec.env}; ini evaltrace_{spec.name}]' if spec.env else '')
        if spec.flag is not None:
            if spec.cli_action == 'store_true':
                group.addoption(spec.flag, action='store_true', dest=spec.dest, default=None, help=help_text)
                _add_explicit_bool_forms(group, spec)
            else:
                group.addoption(
                    spec.flag, action='store', dest=spec.dest, default=None, metavar=spec.metavar, help=help_text
                )
        ini_type: Literal['linelist', 'string'] = 'linelist' if spec.name == 'scrub_patterns' else 'string'
        parser.addini(f'evaltrace_{spec.name}', spec.help, type=ini_type, default=None)


def _add_explicit_bool_forms(group: pytest.OptionGroup, spec: SettingSpec[Any]) -> None:
    """Also accept `--flag=false` (and the other boolean words) for a flag that alone means true.

    An optional value (`nargs='?'`) would take the next word too, so `pytest --evaltrace-skip tests/` would read
    `tests/` as the value. argparse matches a whole option string before it splits at `=`, so each explicit form is
    registered as an exact, hidden option string instead; any other `--flag=value` stays argparse's usage error.
    """
    assert spec.flag is not None
    for words, value in ((_TRUE_WORDS, 'true'), (_FALSE_WORDS, 'false')):
        forms = [f'{spec.flag}={case(w)}' for w in words for case in (str.lower, str.title, str.upper)]
        group.addoption(
            *dict.fromkeys(forms), action='store_const', const=value, dest=spec.dest, help=argparse.SUPPRESS
        )


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


def _resolve_one(
    spec: SettingSpec[T], cli: Any, env: Mapping[str, str], ini: Any, table: Mapping[str, Any]
) -> tuple[T, str]:
    candidates: list[tuple[str, Any]] = []
    if cli is not None:
        candidates.append((f'option {spec.flag}', cli))
    if spec.env and env.get(spec.env, '') != '':
        candidates.append((f'environment variable {spec.env}', env[spec.env]))
    if ini not in (None, [], ''):
        candidates.append((f'ini key evaltrace_{spec.name}', ini))
    if spec.name in table:
        candidates.append((f'[tool.evaltrace] {spec.name}', table[spec.name]))
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
    """Resolve every setting from its four sources (pure; `resolve_settings` feeds it from pytest)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SETTINGS:
        values[spec.name], sources[spec.name] = _resolve_one(spec, cli.get(spec.name), env, ini.get(spec.name), table)
    return values, sources


def resolve_settings(config: pytest.Config, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings of a pytest session."""
    rootdir = config.rootpath
    table = read_pyproject_table(rootdir)
    cli = {spec.name: config.getoption(spec.dest, None) for spec in SETTINGS if spec.flag}
    ini = {spec.name: config.getini(f'evaltrace_{spec.name}') for spec in SETTINGS}
    return _build_settings(cli, os.environ if env is None else env, ini, table, rootdir)


def resolve_cli_settings(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings `pytest` would resolve when run from `cwd` with no options: what the `evaltrace` commands use.

    The same sources and precedence as a pytest session, less the command line (each command has its own options):
    environment variable, ini key of the rootdir's ini file, `[tool.evaltrace]`, default.
    """
    rootdir, ini = find_rootdir_and_ini(Path.cwd() if cwd is None else cwd)
    return _build_settings({}, os.environ if env is None else env, ini, read_pyproject_table(rootdir), rootdir)


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
                ini = {spec.name: section.get(f'evaltrace_{spec.name}') for spec in SETTINGS}
                return folder, ini
    for marker in ('setup.py', 'pyproject.toml'):
        for folder in folders:
            if (folder / marker).is_file():
                return folder, {}
    return start, {}


def _build_settings(
    cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any], table: Mapping[str, Any], rootdir: Path
) -> Settings:
    values, sources = resolve_values(cli, env, ini, table)

    gate_table = table.get('gate')
    try:
        gate = gate_from_mapping(gate_table) if isinstance(gate_table, dict) else None  # pyright: ignore[reportUnknownArgumentType]
    except (ValueError, TypeError) as e:
        raise pytest.UsageError(f'evaltrace: bad [tool.evaltrace.gate] in {rootdir / "pyproject.toml"}: {e}') from None

    def path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else rootdir / p

    return Settings(
        report=path(values['report']),
        max_concurrency=values['max_concurrency'],
        session_concurrency=values['session_concurrency'],
        service_name=values['service_name'],
        environment=values['environment'],
        instrument_pydantic_ai=values['instrument_pydantic_ai'],
        instrument_httpx=values['instrument_httpx'],
        project_url=values['project_url'] or None,
        trace_url_template=values['trace_url_template'] or None,
        timeout=values['timeout'] or None,
        skip=values['skip'],
        store=None if values['store'].lower() in ('', 'off', 'none', 'false') else path(values['store']),
        retention=values['retention'],
        html=None if values['html'].lower() in ('', 'off', 'none', 'false') else path(values['html']),
        record=values['record'],
        table=values['table'],
        progress=values['progress'],
        cassettes=path(values['cassettes']),
        baseline=path(values['baseline']),
        markdown=path(values['markdown']) if values['markdown'] else None,
        shard=values['shard'],
        filter=values['filter'],
        scrub_patterns=values['scrub_patterns'],
        max_value_chars=values['max_value_chars'],
        retry_attempts=values['retry_attempts'],
        retry_max_delay=values['retry_max_delay'],
        rate_limit_rpm=values['rate_limit_rpm'],
        rate_limit_tpm=values['rate_limit_tpm'],
        gate=gate,
        rootdir=rootdir,
        sources=sources,
        rescore=values['rescore'] or None,
    )
