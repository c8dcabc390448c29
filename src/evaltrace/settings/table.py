"""Every setting, declared once: its name, parser, default and help. Its other names are derived from the name.

A setting `foo_bar` is the ini key `evaltrace_foo_bar` (pytest.ini, tox.ini, `[tool.pytest.ini_options]`), the key
`foo_bar` of `[tool.evaltrace]` in pyproject.toml, the option `--evaltrace-foo-bar` and the environment variable
`EVALTRACE_FOO_BAR`. An exception is written in its declaration: `alias` (a shorter name for the option and the
variable), `cli=False` (no option), `environ=False` (no variable). The README's settings table is rendered from here
(`readme_table`), and a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from ..names import DEFAULT_HTML_PATH, DEFAULT_REPORT_PATH, DEFAULT_STORE_PATH
from ..safety.bounds import DEFAULT_MAX_VALUE_CHARS
from . import parse
from .values import record_mode

__all__ = ('SETTINGS', 'Setting', 'readme_table')

T = TypeVar('T')


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting. Its value is `parse(raw)` of the first source that gives one, else `default` (see
    `settings.resolve` for the order)."""

    name: str
    _: KW_ONLY
    parse: Callable[[Any], T]
    default: T
    help: str
    metavar: str | None = None
    """The option's value in `--help` (none for a switch)."""
    alias: str | None = None
    """Spells the option and the environment variable instead of `name` (the ini and pyproject keys keep `name`)."""
    cli: bool = True
    """Whether the setting has an option on pytest's command line."""
    environ: bool = True
    """Whether the setting has an environment variable."""
    switch: bool = False
    """The option alone means true; `--evaltrace-x=false` (or another boolean word) is accepted too."""
    ini_type: Literal['string', 'linelist'] = 'string'
    fallback_env: str | None = None
    """A standard variable read after every evaltrace source, before the default (OTEL_SERVICE_NAME)."""
    shown_default: str | None = None
    """The default as the README and `--help` show it, when the value does not read well (None for `off`)."""
    see: str | None = None
    """A README section with more, linked from the README's table."""

    @property
    def option(self) -> str | None:
        """`--evaltrace-<name>`, with dashes; None when the setting has no option."""
        return f'--evaltrace-{(self.alias or self.name).replace("_", "-")}' if self.cli else None

    @property
    def env(self) -> str | None:
        """`EVALTRACE_<NAME>`; None when the setting has no environment variable."""
        return f'EVALTRACE_{(self.alias or self.name).upper()}' if self.environ else None

    @property
    def ini(self) -> str:
        """The pytest ini key, `evaltrace_<name>` (also the option's `dest`)."""
        return f'evaltrace_{self.name}'

    def default_text(self) -> str:
        """The default as a user would write it."""
        if self.shown_default is not None:
            return self.shown_default
        value: Any = self.default
        if value is None or value in ('', ()):
            return 'none'
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, tuple):  # a shard, i/n
            return '/'.join(str(part) for part in value)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if isinstance(value, Path):
            return value.as_posix()
        return str(value)


SETTINGS: tuple[Setting[Any], ...] = (
    Setting(
        'report',
        parse=parse.path,
        default=DEFAULT_REPORT_PATH,
        metavar='PATH',
        help='Path of the JSON report.',
    ),
    Setting(
        'max_concurrency',
        parse=parse.positive_int,
        default=8,
        metavar='N',
        help='Default number of cases of one suite run at once (a suite may set its own).',
    ),
    Setting(
        'session_concurrency',
        parse=parse.positive_int,
        default=32,
        metavar='N',
        help='Number of cases run at once in the process (each xdist worker), across every suite run.',
    ),
    Setting(
        'service_name',
        parse=parse.text,
        default='evals',
        metavar='NAME',
        fallback_env='OTEL_SERVICE_NAME',
        help='Logfire service name, when evaltrace configures Logfire (`OTEL_SERVICE_NAME`, when set, wins over the '
        'default).',
    ),
    Setting(
        'environment',
        parse=parse.text,
        default='evaluation',
        metavar='NAME',
        help='Logfire deployment environment, when evaltrace configures Logfire.',
    ),
    Setting(
        'instrument_pydantic_ai',
        parse=parse.boolean,
        default=True,
        metavar='BOOL',
        help='Call logfire.instrument_pydantic_ai() (true/false).',
    ),
    Setting(
        'instrument_httpx',
        parse=parse.boolean,
        default=True,
        metavar='BOOL',
        help='Call logfire.instrument_httpx() (true/false).',
    ),
    Setting(
        'project_url',
        parse=parse.optional_text,
        default=None,
        metavar='URL',
        help='Logfire project URL for trace links (default: project_url in .logfire/logfire_credentials.json).',
    ),
    Setting(
        'trace_url_template',
        parse=parse.url_template,
        default=None,
        metavar='TEMPLATE',
        alias='trace_url',
        help='Trace link template with {trace_id} and {span_id} (no other placeholder), for any OpenTelemetry UI.',
    ),
    Setting(
        'timeout',
        parse=parse.positive_float,
        default=None,
        metavar='SECONDS',
        help='Per-case timeout in seconds, around task and evaluators (a suite may set its own).',
    ),
    Setting(
        'skip',
        parse=parse.boolean,
        default=False,
        switch=True,
        help='Skip every eval suite (run the rest of the test suite without the evals); --evaltrace-skip=false '
        'overrides a true from elsewhere.',
    ),
    Setting(
        'store',
        parse=parse.path_or_off,
        default=DEFAULT_STORE_PATH,
        metavar='PATH',
        help='Path of the local trace store (DuckDB); off disables it.',
    ),
    Setting(
        'retention',
        parse=parse.positive_int,
        default=20,
        metavar='N',
        help="How many runs the local trace store (and the HTML report's trends) keep.",
    ),
    Setting(
        'html',
        parse=parse.path_or_off,
        default=DEFAULT_HTML_PATH,
        metavar='PATH',
        help='Path of the self-contained HTML report; off disables it.',
    ),
    Setting(
        'html_traces',
        parse=parse.html_traces,
        default='failures',
        metavar='WHICH',
        help="Which cases' waterfalls the HTML report holds: failures (the cases that did not pass; any case's trace "
        'is in the local trace store, `evaltrace show`) or all.',
    ),
    Setting(
        'record',
        parse=record_mode,
        default=None,
        shown_default='off',
        metavar='MODE',
        help='Record/replay of model traffic: off (live, no cassette), none (replay only), once, new or all '
        '(see the README). A suite may turn it on with @evaltrace.suite(record=...).',
    ),
    Setting(
        'table',
        parse=parse.table_mode,
        default='none',
        metavar='WHICH',
        help="Show pydantic-evals' report table of each suite run in the summary: none, failures or all "
        '(compared with the baseline when there is one).',
    ),
    Setting(
        'progress',
        parse=parse.progress_mode,
        default='auto',
        metavar='MODE',
        help='Progress of each running suite run (cases done, failures, spend): auto (live on a terminal, plain '
        'lines otherwise), live, plain or off.',
    ),
    Setting(
        'cassettes',
        parse=parse.path,
        default=Path('evals/cassettes'),
        metavar='DIR',
        help='Folder of the per-case cassettes.',
    ),
    Setting(
        'baseline',
        parse=parse.path,
        default=Path('evals/baseline.json'),
        metavar='PATH',
        help='Baseline report to compare against (skipped when the file does not exist).',
    ),
    Setting(
        'markdown',
        parse=parse.optional_path,
        default=None,
        metavar='PATH',
        help='Also write the markdown summary to this path.',
    ),
    Setting(
        'shard',
        parse=parse.shard,
        default=(1, 1),
        metavar='I/N',
        help='Run only shard i of n of the eval cases, e.g. 1/4.',
    ),
    Setting(
        'filter',
        parse=parse.case_filter,
        default=None,
        metavar='EXPR',
        see='Selecting cases by metadata',
        help='Run only the eval cases whose metadata matches EXPR, e.g. "difficulty=hard and not tags=slow": '
        'key=value, key!=value, and, or, not, parentheses, dotted keys (meta.level=2); a list matches if any element '
        'does. Applied after -k and before the shards split the cases; other tests are left alone.',
    ),
    Setting(
        'retry_attempts',
        parse=parse.positive_int,
        default=4,
        metavar='N',
        help='Attempts per provider request inside eval cases (1 = evaltrace does not retry).',
    ),
    Setting(
        'retry_max_delay',
        parse=parse.non_negative_float,
        default=30.0,
        metavar='SECONDS',
        help='Most seconds spent waiting between the retries of one provider request.',
    ),
    Setting(
        'rate_limit_rpm',
        parse=parse.non_negative_float,
        default=0.0,
        metavar='N',
        help='Requests per minute per model, shared by every case of the process (0 = no limit).',
    ),
    Setting(
        'rate_limit_tpm',
        parse=parse.non_negative_float,
        default=0.0,
        metavar='N',
        help='Tokens per minute per model (estimated from request size), shared like rate_limit_rpm (0 = no limit).',
    ),
    Setting(
        'rescore',
        parse=parse.optional_text,
        default=None,
        metavar='RUN_ID',
        environ=False,  # set by `evaltrace rescore` on the command line of the pytest run it starts
        help='Re-score: re-run the current evaluators on the outputs and task spans stored by this run id, without '
        'calling the tasks (what `evaltrace rescore` runs).',
    ),
    Setting(
        'max_value_chars',
        parse=parse.value_chars,
        default=DEFAULT_MAX_VALUE_CHARS,
        metavar='N',
        help="Characters of JSON kept per stored value (a case's inputs, expected output, output, metadata, "
        'attributes, each failure message and span attribute); the rest is cut with a marker.',
    ),
    Setting(
        'scrub_patterns',
        parse=parse.patterns,
        default=(),
        cli=False,  # a list: one pattern per line of the variable, a TOML list, an ini linelist
        ini_type='linelist',
        help='Extra regular expressions whose matches are scrubbed from traces, reports and cassettes.',
    ),
)


def _anchor(section: str) -> str:
    """GitHub's anchor of a README heading."""
    kept = ''.join(c for c in section.lower() if c.isalnum() or c in ' -_')
    return kept.replace(' ', '-')


def readme_table() -> str:
    """The README's settings table, one row per setting."""
    lines = [
        '| setting (`[tool.evaltrace]`, ini `evaltrace_<name>`) | option | environment variable | default | meaning |',
        '|---|---|---|---|---|',
    ]
    for s in SETTINGS:
        option = f'`{s.option}`' if s.option else ''
        env = f'`{s.env}`' if s.env else ''
        meaning = s.help + (f' See [{s.see}](#{_anchor(s.see)}).' if s.see else '')
        lines.append(f'| `{s.name}` | {option} | {env} | `{s.default_text()}` | {meaning} |')
    return '\n'.join(lines) + '\n'
