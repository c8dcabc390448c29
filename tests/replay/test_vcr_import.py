"""vcrpy is imported only by a run that records or replays: its import costs about a quarter of a second."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject

CONFTEST = """
import sys
from pathlib import Path


def pytest_unconfigure(config):
    Path('vcr_imported.txt').write_text(str('vcr' in sys.modules))
"""

SUITE = """
import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    return inputs.upper()
"""


def test_a_run_without_record_or_replay_never_imports_vcrpy(pytester: pytest.Pytester) -> None:
    project = EvalProject(pytester)
    project.dataset('words', [{'name': 'a', 'inputs': 'a', 'expected_output': 'A'}], ['EqualsExpected'])
    project.write('conftest.py', CONFTEST)
    project.write('evals/test_words.py', SUITE)
    # A process of its own: the outer test session has imported vcrpy already.
    result = pytester.runpytest_subprocess('evals', '-p', 'no:randomly')
    result.assert_outcomes(passed=1)
    assert (pytester.path / 'vcr_imported.txt').read_text() == 'False'
