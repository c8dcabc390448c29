"""A newcomer's first runs: the README quickstart and `evaltrace init` in an empty project, offline cost labels,
`-p no:evaltrace`, `evaltrace --version`, non-ASCII node ids in `evaltrace show`, the offline cost gate, and the
install points (ranges, LICENSE, old pip, CI on the oldest and newest versions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaltrace.cli import main
from tests.readme_quickstart import ROOT, extract_quickstart

README = (ROOT / 'README.md').read_text(encoding='utf-8')
LABEL = 'offline model, priced as openai:gpt-4o-mini'


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, '-m', 'evaltrace.cli', *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_readme_quickstart_passes_offline_in_an_empty_project(pytester: pytest.Pytester) -> None:
    files = extract_quickstart(README)
    assert list(files) == ['evals/test_capitals.py']
    for path, body in files.items():
        (pytester.path / path).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / path).write_text(body, encoding='utf-8')
    result = pytester.runpytest_subprocess('evals/', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f'*cost $0.0000*({LABEL})', f'session: 3 passed*({LABEL})'])


def test_init_scaffolds_a_suite_that_passes_offline_with_priced_task_and_judge(pytester: pytest.Pytester) -> None:
    done = _cli('init', cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    for name in ('quickstart_agent.py', 'conftest.py', 'test_quickstart.py', 'datasets/quickstart.yaml'):
        assert (pytester.path / 'evals' / name).is_file()
    schema = json.loads((pytester.path / 'evals/datasets/quickstart_schema.json').read_text())
    assert 'cases' in schema['properties']
    assert (
        (pytester.path / 'evals/datasets/quickstart.yaml')
        .read_text()
        .startswith('# yaml-language-server: $schema=quickstart_schema.json')
    )

    result = pytester.runpytest_subprocess('evals/', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3)
    report = json.loads(next(pytester.path.rglob('.evaltrace/report.json')).read_text())
    stats = report['suites'][0]['stats']
    assert stats['task_usage']['cost_usd'] > 0 and stats['judge_usage']['cost_usd'] > 0
    assert stats['usage']['offline_priced_as'] == ['openai:gpt-4o-mini']
    result.stdout.fnmatch_lines([f'*(judge $0.0000*) ({LABEL})'])


def test_init_writes_nothing_when_a_file_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / 'evals' / 'conftest.py'
    mine.parent.mkdir()
    mine.write_text('# my own conftest\n')
    assert main(['init', '--dir', str(tmp_path)]) == 1
    assert 'evals/conftest.py' in capsys.readouterr().err
    assert mine.read_text() == '# my own conftest\n'
    assert sorted(p.name for p in tmp_path.rglob('*') if p.is_file()) == ['conftest.py']


SUITE = """
import evaltrace
from pydantic_evals import Case, Dataset

@evaltrace.suite(Dataset(name='d', cases=[Case(name='café', inputs='a', expected_output='a')]))
def test_echo(text: str) -> str:
    return text
"""


def test_disabling_the_plugin_skips_the_suites_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE, test_plain='def test_plain():\n    pass\n')
    result = pytester.runpytest_subprocess('-p', 'no:evaltrace', '--strict-markers', '-rs', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(['*evaltrace is disabled (-p no:evaltrace)*'])
    assert pytester.runpytest_subprocess('--strict-markers', '-p', 'no:cacheprovider').ret == 0


def test_version() -> None:
    from importlib.metadata import version

    done = _cli('--version', cwd=ROOT)
    assert done.returncode == 0
    assert done.stdout.strip() == f'evaltrace {version("evaltrace")}'


def test_show_finds_a_non_ascii_node_id_typed_as_it_is(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess('-p', 'no:cacheprovider').assert_outcomes(passed=1)
    report = json.loads((pytester.path / '.evaltrace/report.json').read_text())
    assert report['cases'][0]['nodeid'] == 'test_suite.py::test_echo[caf\\xe9]'  # how pytest spells it
    done = _cli('show', 'test_suite.py::test_echo[café]', cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('test_suite.py::test_echo[caf\\xe9]  PASSED')


def test_the_offline_cost_gate_checks_a_real_figure(pytester: pytest.Pytester) -> None:
    done = _cli('init', cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    (pytester.path / 'pyproject.toml').write_text('[tool.evaltrace.gate]\nmax_cost_usd = 0.05\n', encoding='utf-8')
    result = pytester.runpytest_subprocess('evals/', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3)
    report = json.loads((pytester.path / '.evaltrace/report.json').read_text())
    gate = next(g for g in report['session']['gates'] if g['name'] == 'max_cost_usd')
    assert gate['passed'] is True and 0 < gate['actual'] < 0.05  # task and judge cost, priced as gpt-4o-mini
    result.stdout.fnmatch_lines(['    gate max_cost_usd: PASS (actual 0.000*, threshold 0.05)'])


def test_install_points_stay_in_place() -> None:
    """Issue 16, point 1: ranges (no pins), the old-pip advice, the LICENSE in the wheel, and CI on the oldest and the
    newest versions (`make versions`) and on the built wheel outside the repository (`make quickstart`)."""
    import tomllib

    pyproject = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))
    deps: list[str] = pyproject['project']['dependencies']
    assert not [d for d in deps if '==' in d]
    for name in ('pydantic-evals', 'pydantic-ai-slim', 'logfire'):
        spec = next(d for d in deps if d.startswith(name))
        assert '>=' in spec and '<' in spec.split('>=', 1)[1], spec
    assert pyproject['project']['license-files'] == ['LICENSE'] and (ROOT / 'LICENSE').is_file()
    assert 'python -m pip install -U pip' in README
    ci = (ROOT / '.ci/run').read_text(encoding='utf-8')
    assert 'make quickstart' in ci and 'make versions' in ci
    versions = (ROOT / '.ci/versions').read_text(encoding='utf-8')
    assert 'lowest-direct highest' in versions and '--resolution "$res"' in versions
