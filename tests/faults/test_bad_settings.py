"""Bad settings: each is a one-line usage error naming the setting and where it came from, never a hang or a traceback."""

from __future__ import annotations

import re
from typing import Any

import pytest

from evaltrace.settings.resolve import check_table_keys, resolve_values
from tests.support.eval_project import EvalProject


def _resolve(cli: dict[str, Any] | None = None, table: dict[str, Any] | None = None) -> dict[str, Any]:
    return resolve_values(cli or {}, {}, {}, table or {})[0]


@pytest.mark.parametrize('name', ['timeout', 'retry_max_delay', 'rate_limit_rpm', 'rate_limit_tpm'])
@pytest.mark.parametrize('raw', ['nan', 'inf', '-inf', 'NaN'])
def test_nan_and_inf_are_rejected_for_float_settings(name: str, raw: str) -> None:
    with pytest.raises(pytest.UsageError, match=f'bad value for {name} from option .*: expected a finite number'):
        _resolve(cli={name: raw})
    with pytest.raises(pytest.UsageError, match=rf'bad value for {name} from \[tool.evaltrace\] {name}'):
        _resolve(table={name: float(raw)})


# The settings that count something: int() would cut 2.7 to 2 and take true as 1, so each takes a whole number only.
COUNT_SETTINGS = ['max_concurrency', 'session_concurrency', 'retention', 'retry_attempts', 'max_value_chars']


@pytest.mark.parametrize('name', COUNT_SETTINGS)
@pytest.mark.parametrize('raw', [500.5, 500.0, True, '500.5', '5e2', 'many'])
def test_a_count_setting_takes_only_a_whole_number(name: str, raw: object) -> None:
    shown = re.escape(repr(raw))
    with pytest.raises(
        pytest.UsageError,
        match=rf'bad value for {name} from \[tool.evaltrace\] {name}: expected a whole .*, got {shown}$',
    ):
        _resolve(table={name: raw})
    if isinstance(raw, str):  # an option, a variable and an ini key are text
        with pytest.raises(pytest.UsageError, match=rf'bad value for {name} from option --evaltrace-.*, got {shown}$'):
            _resolve(cli={name: raw})
        env = {f'EVALTRACE_{name.upper()}': raw}
        with pytest.raises(
            pytest.UsageError, match=rf'bad value for {name} from environment variable .*, got {shown}$'
        ):
            resolve_values({}, env, {}, {})
        with pytest.raises(
            pytest.UsageError, match=rf'bad value for {name} from ini key evaltrace_{name}: .*, got {shown}$'
        ):
            resolve_values({}, {}, {name: raw}, {})


@pytest.mark.parametrize('name', COUNT_SETTINGS)
def test_a_count_setting_takes_a_whole_number_from_every_source(name: str) -> None:
    assert _resolve(table={name: 500})[name] == 500
    assert _resolve(table={name: '500'})[name] == 500
    assert _resolve(cli={name: ' 500 '})[name] == 500


@pytest.mark.parametrize('name', ['timeout', 'retry_max_delay', 'rate_limit_rpm', 'rate_limit_tpm'])
@pytest.mark.parametrize('raw', [True, False, 'soon'])
def test_a_number_setting_rejects_a_boolean_and_a_word(name: str, raw: object) -> None:
    with pytest.raises(pytest.UsageError, match=rf'bad value for {name} from .*: expected a number.*, got {raw!r}$'):
        _resolve(table={name: raw})


@pytest.mark.parametrize(
    ('word', 'value'), [('yes', True), ('No', False), ('on', True), ('OFF', False), ('1', True), ('0', False)]
)
def test_a_boolean_setting_takes_the_usual_words_from_every_source(word: str, value: bool) -> None:
    """Text sources (option, variable, ini key) and `[tool.evaltrace]` take yes/no, on/off, 1/0 as the README says;
    only a gate key, TOML alone, wants a TOML boolean (`test_bad_gate_values_are_rejected_with_the_key_named`)."""
    name = 'instrument_httpx'
    assert _resolve(cli={name: word})[name] is value
    assert resolve_values({}, {'EVALTRACE_INSTRUMENT_HTTPX': word}, {}, {})[0][name] is value
    assert resolve_values({}, {}, {name: word}, {})[0][name] is value
    assert _resolve(table={name: word})[name] is value


def test_invalid_scrub_pattern_is_a_usage_error_naming_it() -> None:
    with pytest.raises(pytest.UsageError, match=r"scrub_patterns .*: invalid regular expression 'sk-\[' "):
        _resolve(table={'scrub_patterns': ['ok-[0-9]+', 'sk-[']})


@pytest.mark.parametrize(
    ('key', 'suggestion'), [('timout', 'timeout'), ('max_concurency', 'max_concurrency'), ('gates', 'gate')]
)
def test_unknown_table_key_is_a_usage_error_with_the_close_match(key: str, suggestion: str) -> None:
    with pytest.raises(
        pytest.UsageError, match=rf"unknown key '{key}' in \[tool.evaltrace\].*did you mean '{suggestion}'"
    ):
        check_table_keys({key: 1, 'timeout': 2}, 'pyproject.toml')


def test_known_table_keys_pass() -> None:
    check_table_keys({'timeout': 2, 'gate': {'min_pass_rate': 0.5}}, 'pyproject.toml')


@pytest.mark.parametrize('template', ['https://ui/{trace}', 'https://ui/{trace_id}/{spanid}', '{traceId}'])
def test_trace_url_template_with_an_unknown_placeholder_is_a_usage_error(template: str) -> None:
    with pytest.raises(pytest.UsageError, match=r'bad value for trace_url_template .*placeholder'):
        _resolve(cli={'trace_url_template': template})
    assert _resolve(cli={'trace_url_template': 'https://ui/trace/{trace_id}?span={span_id}'})
    assert _resolve(cli={'trace_url_template': 'https://g/explore?left={"q":"{trace_id}"}'})


SUITE = """
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_s(inputs: str) -> str:
    return inputs
"""


def _one_line_usage_error(result: pytest.RunResult, *needles: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith('ERROR:')]
    assert len(errors) == 1, result.stderr.str()
    for needle in needles:
        assert needle in errors[0]
    assert 'Traceback' not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ('table', 'needles'),
    [
        ('timout = 2', ("unknown key 'timout'", "did you mean 'timeout'")),
        ('gate = "strict"', ('gate', 'must be a table')),
        ('scrub_patterns = ["("]', ('scrub_patterns', 'invalid regular expression')),
        ('retry_max_delay = nan', ('retry_max_delay', 'finite')),
        ('max_concurrency = 2.7', ('max_concurrency', 'expected a whole number >= 1, got 2.7')),
        (
            '[tool.evaltrace.gate]\nmax_errors = 1.5',
            ('[tool.evaltrace.gate]', 'max_errors must be a whole number, got 1.5'),
        ),
        (
            '[tool.evaltrace.gate]\nno_assertion_regressions = "yes"',
            ('[tool.evaltrace.gate]', "no_assertion_regressions must be true or false, got 'yes'"),
        ),
    ],
)
def test_bad_pyproject_settings_stop_the_run_with_one_line(
    project: EvalProject, table: str, needles: tuple[str, ...]
) -> None:
    project.write('pyproject.toml', f'[tool.pytest.ini_options]\n\n[tool.evaltrace]\n{table}\n')
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}])
    project.write('evals/test_s.py', SUITE)
    _one_line_usage_error(project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider'), *needles)


@pytest.mark.parametrize('flag', ['--evaltrace-timeout=nan', '--evaltrace-retry-max-delay=inf'])
def test_nan_options_stop_the_run_with_one_line(project: EvalProject, flag: str) -> None:
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}])
    project.write('evals/test_s.py', SUITE)
    _one_line_usage_error(project.pytester.runpytest_subprocess('evals', flag), flag.split('=')[0], 'finite')


@pytest.mark.parametrize(
    ('flag', 'needle'),
    [
        ('--evaltrace-max-concurrency=2.7', "expected a whole number >= 1, got '2.7'"),
        ('--evaltrace-retention=1.5', "expected a whole number >= 1, got '1.5'"),
    ],
)
def test_a_fractional_count_option_stops_the_run_with_one_line(project: EvalProject, flag: str, needle: str) -> None:
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}])
    project.write('evals/test_s.py', SUITE)
    _one_line_usage_error(project.pytester.runpytest_subprocess('evals', flag), flag.split('=')[0], needle)


@pytest.mark.parametrize(
    ('args', 'skipped'),
    [
        (['--evaltrace-skip=false'], False),
        (['--evaltrace-skip=true'], True),
        (['--evaltrace-skip'], True),
        (['--evaltrace-skip', 'evals'], True),  # a path after the bare flag stays a path
        (['evals', '--evaltrace-skip=0'], False),
    ],
)
def test_skip_flag_takes_an_optional_boolean(project: EvalProject, args: list[str], skipped: bool) -> None:
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}, {'name': 'b', 'inputs': 'b'}])
    project.write('evals/test_s.py', SUITE)
    project.write('tests_other/test_plain.py', 'def test_plain():\n    pass\n')
    paths = [] if 'evals' in args else ['evals']
    result = project.pytester.runpytest_inprocess(*paths, *args, '-p', 'no:cacheprovider')
    assert result.ret == 0, result.stdout.str()
    if skipped:
        result.assert_outcomes(skipped=2)
    else:
        result.assert_outcomes(passed=2)


def test_bad_skip_value_is_a_usage_error(project: EvalProject) -> None:
    project.dataset('cases', [{'name': 'a', 'inputs': 'a'}])
    project.write('evals/test_s.py', SUITE)
    result = project.pytester.runpytest_subprocess('evals', '--evaltrace-skip=maybe')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --evaltrace-skip: ignored explicit argument 'maybe'"])
