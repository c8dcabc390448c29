"""The README, the --help texts and pyproject stay in step with the code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from evaltrace.cli import SUBCOMMANDS, build_parser
from evaltrace.settings.table import SETTINGS, readme_table

ROOT = Path(__file__).parents[2]
README = (ROOT / 'README.md').read_text(encoding='utf-8')


def test_readme_settings_table_is_rendered_from_the_declarations() -> None:
    table = readme_table()
    assert table in README, f'README settings table is out of step; it should read:\n{table}'


def test_pytest_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess('--help')
    out = result.stdout.str()
    for spec in SETTINGS:
        if spec.option:
            assert spec.option in out
    assert 'evaltrace_report' in out  # ini keys too


def test_cli_help_describes_every_subcommand() -> None:
    parser = build_parser()
    text = parser.format_help()
    for command in ('init', 'sql', 'show', 'report', 'baseline', 'merge', 'rescore'):
        assert command in text
    assert len(SUBCOMMANDS) >= 4
    for command in ('init', 'sql', 'show', 'report', 'merge', 'rescore'):
        out = subprocess.run(
            [sys.executable, '-m', 'evaltrace.cli', command, '--help'], capture_output=True, text=True, check=True
        ).stdout
        assert out.startswith('usage: evaltrace ' + command)


def test_readme_opens_with_the_two_commands_and_they_exist_in_the_makefile() -> None:
    first_block = README.split('```bash', 1)[1].split('```', 1)[0]
    assert 'make evals' in first_block and 'make test' in first_block
    makefile = (ROOT / 'Makefile').read_text()
    assert '\nevals:' in makefile and '\ntest:' in makefile
    assert 'pytest evals/' in makefile


def test_pyproject_registers_the_plugin_and_the_cli() -> None:
    pyproject = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    assert pyproject['project']['entry-points']['pytest11'] == {
        'evaltrace': 'evaltrace.plugin',
        'evaltrace_disabled': 'evaltrace.disabled',  # stays loaded under -p no:evaltrace
    }
    assert pyproject['project']['scripts'] == {'evaltrace': 'evaltrace.cli:main'}
