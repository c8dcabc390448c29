"""The `evaltrace` commands honour the plugin's settings, OTEL_SERVICE_NAME, report file modes, Dataset objects."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_evals import Case, Dataset

from evaltrace.collect.dataset import DatasetError, validate_dataset_inputs
from evaltrace.settings.resolve import find_rootdir_and_ini, resolve_cli_settings, resolve_values

SUITE = """
import evaltrace
from pydantic_evals import Case, Dataset

@evaltrace.suite(Dataset(name='d', cases=[Case(name='one', inputs='a', expected_output='a')]))
def test_echo(text: str) -> str:
    return text
"""


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith('EVALTRACE_')} | env
    return subprocess.run(
        [sys.executable, '-m', 'evaltrace.cli', *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def ran(pytester: pytest.Pytester) -> Path:
    """A project whose [tool.evaltrace] moves the store and the report, after one run of one suite."""
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\n\n[tool.evaltrace]\nstore = "var/traces.duckdb"\nreport = "var/report.json"\n'
    )
    pytester.makepyfile(test_suite=SUITE)
    (pytester.path / 'sub').mkdir()
    pytester.runpytest_subprocess('-p', 'no:cacheprovider').assert_outcomes(passed=1)
    assert (pytester.path / 'var/report.json').is_file() and not (pytester.path / '.evaltrace/report.json').exists()
    return pytester.path


def test_commands_use_the_store_and_report_of_pyproject(ran: Path) -> None:
    sql = _cli('sql', "SELECT count(*) AS n FROM records WHERE span_name LIKE 'evaluate%'", '--format', 'json', cwd=ran)
    assert sql.returncode == 0, sql.stderr
    assert '"n": 1' in sql.stdout
    show = _cli('show', 'one', cwd=ran / 'sub')  # from a subfolder, as pytest finds the rootdir
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith('test_suite.py::test_echo[one]  PASSED')
    report = _cli('report', cwd=ran)
    assert report.returncode == 0 and 'test_suite.py::test_echo: 1 passed' in report.stdout
    saved = _cli('baseline', 'save', cwd=ran)
    assert saved.returncode == 0, saved.stderr
    assert (ran / 'evals/baseline.json').is_file()


def test_commands_use_evaltrace_store_from_the_environment(ran: Path) -> None:
    moved = ran / 'elsewhere.duckdb'
    done = _cli('sql', 'SELECT 1', cwd=ran, EVALTRACE_STORE=str(moved))
    assert done.returncode == 1
    assert done.stderr.startswith('evaltrace sql: no trace store at elsewhere.duckdb')  # shown relative to the cwd
    off = _cli('show', 'one', cwd=ran, EVALTRACE_STORE='off')
    assert off.returncode == 1
    assert 'the local trace store is off (store from environment variable EVALTRACE_STORE)' in off.stderr
    bad = _cli('sql', 'SELECT 1', cwd=ran, EVALTRACE_RETENTION='zero')
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith('evaltrace: bad value for retention from environment variable')


def test_rootdir_and_ini_are_found_as_pytest_finds_them(tmp_path: Path) -> None:
    (tmp_path / 'tox.ini').write_text('[pytest]\nevaltrace_store = from-tox.duckdb\n')
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    (tmp_path / 'a' / 'pyproject.toml').write_text('[project]\nname = "x"\n')  # no pytest table: not an ini file
    rootdir, ini = find_rootdir_and_ini(tmp_path / 'a' / 'b')
    assert rootdir == tmp_path.resolve()
    assert ini['store'] == 'from-tox.duckdb'
    assert resolve_cli_settings(tmp_path / 'a' / 'b', env={}).store == tmp_path.resolve() / 'from-tox.duckdb'


def test_otel_service_name_wins_over_the_default_only() -> None:
    def name(env: dict[str, str], table: dict[str, Any] | None = None) -> tuple[str, str]:
        values, sources = resolve_values({}, env, {}, table or {})
        return values['service_name'], sources['service_name']

    assert name({}) == ('evals', 'default')
    assert name({'OTEL_SERVICE_NAME': 'shop'}) == ('shop', 'environment variable OTEL_SERVICE_NAME')
    assert name({'OTEL_SERVICE_NAME': 'shop'}, {'service_name': 'mine'})[0] == 'mine'
    assert name({'OTEL_SERVICE_NAME': 'shop', 'EVALTRACE_SERVICE_NAME': 'evals-ci'})[0] == 'evals-ci'


def test_report_files_get_the_users_umask(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    old = os.umask(0o022)
    try:
        pytester.runpytest_subprocess('-p', 'no:cacheprovider').assert_outcomes(passed=1)
    finally:
        os.umask(old)
    for name in ('report.json', 'report.html'):
        assert stat.S_IMODE((pytester.path / '.evaltrace' / name).stat().st_mode) == 0o644, name


class Question(BaseModel):
    text: str
    level: int


def test_a_dataset_objects_inputs_are_validated_against_the_task_annotation() -> None:
    good = Dataset(name='q', cases=[Case(name='a', inputs={'text': 'hi', 'level': '2'})])
    validated = validate_dataset_inputs(good, Question, 'dataset q')
    assert validated.cases[0].inputs == Question(text='hi', level=2)
    assert good.cases[0].inputs == {'text': 'hi', 'level': '2'}  # the caller's dataset is left as it was
    same = Dataset(name='q', cases=[Case(name='a', inputs=Question(text='hi', level=1))])
    assert validate_dataset_inputs(same, Question, 'dataset q') is same

    bad = Dataset(name='q', cases=[Case(name='a', inputs={'text': 'hi', 'level': 1}), Case(name='b', inputs={})])
    with pytest.raises(DatasetError, match=r"^dataset q: case 'b' \(#2\), field inputs\.text: Field required"):
        validate_dataset_inputs(bad, Question, 'dataset q')


BAD_OBJECT_SUITE = """
from pydantic import BaseModel
from pydantic_evals import Case, Dataset
import evaltrace


class Question(BaseModel):
    text: str
    level: int


dataset = Dataset(name='q', cases=[Case(name='a', inputs={'text': 'hi', 'level': 1}), Case(name='b', inputs={})])


@evaltrace.suite(dataset)
def test_questions(inputs: Question) -> str:
    return inputs.text
"""


def test_a_dataset_object_with_bad_inputs_is_its_suites_dataset_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_questions=BAD_OBJECT_SUITE)
    result = pytester.runpytest_inprocess('-p', 'no:cacheprovider')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*evaltrace: bad dataset: dataset 'q': case 'b' (#2), field inputs.text: Field required*"]
    )
