"""A bad dataset file is its own suite's error item: the other suites still run."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject

SUITES = """
import evaltrace

@evaltrace.suite('datasets/bad.yaml')
async def test_bad(inputs: str) -> str:
    return inputs

@evaltrace.suite('datasets/good.yaml')
async def test_good(inputs: str) -> str:
    return inputs
"""


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        (b'cases:\n- name: a\n  inputs: caf\xe9\n', 'datasets/bad.yaml: not UTF-8 text (byte 0xe9 at offset 30)'),
        (b'cases: []\n', 'datasets/bad.yaml: the dataset has no cases'),
        (b'name: nothing\n', 'datasets/bad.yaml: the dataset has no cases'),
    ],
    ids=['latin-1', 'empty-list', 'no-cases-key'],
)
def test_a_bad_dataset_file_errors_its_suite_only(project: EvalProject, content: bytes, message: str) -> None:
    (project.path / 'datasets').mkdir()
    (project.path / 'datasets/bad.yaml').write_bytes(content)
    project.dataset('good', [{'name': 'g', 'inputs': 'g'}])
    project.write('evals/test_suites.py', SUITES)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)  # an error at setup of `test_bad[dataset-error]`, as for bad YAML
    result.stdout.fnmatch_lines([f'*evaltrace: bad dataset: {message}*'])
