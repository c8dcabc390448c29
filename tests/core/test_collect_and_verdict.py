"""Collection (one item per case), selection, bad datasets, case verdicts, exit status and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from logfire.testing import CaptureLogfire

from evaltrace.store.duckdb import open_store
from evaltrace.views.html import read_page_data
from tests.support.eval_project import EvalProject

SCHEMA = json.loads((Path(__file__).parents[2] / 'src/evaltrace/report/report.schema.json').read_text())

COUNTING_SUITE = """
import evaltrace
from pathlib import Path

@evaltrace.suite('datasets/words.yaml'{options})
def test_words(inputs: str) -> str:
    with Path('calls.log').open('a') as f:
        f.write(inputs + '\\n')
    return inputs.upper() if inputs != 'word2' else 'wrong'
"""


def _calls(project: EvalProject) -> list[str]:
    path = project.path / 'calls.log'
    return sorted(path.read_text().split()) if path.exists() else []


def test_every_case_is_an_item_with_a_stable_node_id(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    result = project.pytester.runpytest_inprocess('evals', '--co', '-q')
    result.stdout.fnmatch_lines(
        [
            'evals/test_words.py::test_words[[]c0[]]',
            'evals/test_words.py::test_words[[]c1[]]',
            'evals/test_words.py::test_words[[]c2[]]',
        ]
    )
    assert _calls(project) == []  # collecting runs nothing
    assert not (project.path / '.evaltrace/report.json').exists()


def test_repeat_gives_one_item_per_case_and_repeat(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=', repeat=3'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=6)
    assert _calls(project) == ['word0'] * 3 + ['word1'] * 3


def test_k_selects_and_runs_only_the_selected_cases(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(5), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    result = project.pytester.runpytest_inprocess('evals', '-k', 'c1 or c3', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=2, deselected=3)
    assert _calls(project) == ['word1', 'word3']
    assert sorted(project.cases()) == ['c1', 'c3']


def test_deselect_and_last_failed(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(4), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    result = project.pytester.runpytest_inprocess('evals', '--deselect', 'evals/test_words.py::test_words[c0]')
    result.assert_outcomes(passed=2, failed=1, deselected=1)
    (project.path / 'calls.log').unlink()
    result = project.pytester.runpytest_inprocess('evals', '--lf')
    result.assert_outcomes(failed=1)
    assert _calls(project) == ['word2']


def test_last_failed_on_a_file_is_the_failures_verdict_not_an_incomplete_run(
    project: EvalProject, upper_cases: Any
) -> None:
    """With a file argument, `--lf` deselects the passed items after every other plugin has narrowed the items."""
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    result = project.pytester.runpytest_inprocess('evals/test_words.py')
    result.assert_outcomes(passed=2, failed=1)
    (project.path / 'calls.log').unlink()
    result = project.pytester.runpytest_inprocess('evals/test_words.py', '--lf')
    result.assert_outcomes(failed=1, deselected=2)
    assert _calls(project) == ['word2']
    assert result.ret == 1  # the case still fails; nothing is missing
    assert 'INCOMPLETE' not in result.stdout.str()
    report = project.report()
    assert report['complete'] is True and sorted(project.cases()) == ['c2']


def test_failure_message_names_evaluator_expected_actual_usage_and_trace(
    project: EvalProject, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(3), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            'case c2 failed: assertion EqualsExpected is False',
            '  - assertion EqualsExpected is False',
            '  expected: "WORD2"',
            '  actual:   "wrong"',
            '  task usage: 0 request(s), 0 input + 0 output tokens, $0.000000',
            '  trace: file://*/.evaltrace/report.html#case-*',
            "  see its trace: evaltrace show 'evals/test_words.py::test_words[[]c2[]]'",
        ]
    )
    case = project.cases()['c2']
    assert case['status'] == 'failed'
    assert case['failures'] == ['assertion EqualsExpected is False']


SCORED = """
import evaltrace
from dataclasses import dataclass
from pydantic_evals.evaluators import Evaluator, EvaluatorContext, EvaluationReason

@dataclass
class Length(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> dict:
        return {{
            'length': EvaluationReason(value=len(ctx.output) / 10, reason=f'{{len(ctx.output)}} chars'),
            'kind': 'short' if len(ctx.output) < 5 else 'long',
        }}

@dataclass
class Boom(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        if ctx.inputs == 'explode':
            raise RuntimeError('evaluator exploded')
        return True

@evaltrace.suite('datasets/words.yaml', evaluator_types=[Length, Boom], min_scores={{'length': 0.5}}{options})
def test_words(inputs: str) -> str:
    if inputs == 'raise':
        raise ValueError('task failed on purpose')
    return inputs
"""


def _scored_dataset(project: EvalProject) -> None:
    project.dataset(
        'words',
        [
            {'name': 'long', 'inputs': 'abcdefgh'},
            {'name': 'short', 'inputs': 'abc'},
            {'name': 'raise', 'inputs': 'raise'},
            {'name': 'explode', 'inputs': 'explode'},
        ],
        ['Length', 'Boom'],
    )


def test_statuses_scores_labels_and_errors(project: EvalProject) -> None:
    _scored_dataset(project)
    project.write('evals/test_words.py', SCORED.format(options=''))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=1, failed=3)
    assert result.ret == 1
    cases = project.cases()
    assert cases['long']['status'] == 'passed'
    assert cases['long']['labels']['kind']['value'] == 'long'
    assert cases['short']['status'] == 'failed'  # score below the threshold; the label never fails a case
    assert cases['short']['failures'] == ['score length = 0.3 is below 0.5: 3 chars']
    assert cases['raise']['status'] == 'error'
    assert 'ValueError: task failed on purpose' in cases['raise']['error']['message']
    assert 'Traceback' in cases['raise']['error']['traceback']
    assert cases['explode']['status'] == 'error'
    assert 'evaluator exploded' in cases['explode']['failures'][0]
    result.stdout.fnmatch_lines(['*ValueError: task failed on purpose*'])
    jsonschema.validate(project.report(), SCHEMA)


def test_under_a_passing_gate_failing_cases_do_not_fail_the_session(project: EvalProject) -> None:
    _scored_dataset(project)
    project.write('evals/test_words.py', SCORED.format(options=', gate=evaltrace.Gate(min_pass_rate=0.25)'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=1, failed=0)
    assert result.parseoutcomes()['gated'] == 3  # their own outcome, not pytest's `failed` (see _outcome)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ['*gate min_pass_rate: PASS (actual 0.25, threshold 0.25)*', '*FAILED short: file://*report.html#case-*']
    )
    report = project.report()
    assert report['suites'][0]['gates'][0]['passed'] is True


def test_a_failed_gate_fails_the_session_with_its_own_status(project: EvalProject) -> None:
    _scored_dataset(project)
    project.write('evals/test_words.py', SCORED.format(options=', gate=evaltrace.Gate(min_pass_rate=0.5)'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 6
    result.stdout.fnmatch_lines(['*gate min_pass_rate: FAIL (actual 0.25, threshold 0.5)*'])


BAD_INPUTS = {
    'syntax': ('cases:\n  - name: a\n    inputs: [unclosed\n', 'datasets/bad.yaml:*: not valid YAML*'),
    'unknown_evaluator': (
        'cases:\n  - name: a\n    inputs: {text: x}\nevaluators:\n  - NoSuchEvaluator\n',
        "datasets/bad.yaml: the dataset's evaluators: unknown evaluator 'NoSuchEvaluator'; known: *, Contains, *",
    ),
    'unknown_case_evaluator': (
        'cases:\n  - name: a\n    inputs: {text: x}\n  - name: b\n    inputs: {text: y}\n'
        '    evaluators: [EqualsExpected, NoSuchEvaluator]\n',
        "datasets/bad.yaml: case 'b' (#2): unknown evaluator 'NoSuchEvaluator'; known: *, EqualsExpected, *"
        '; a custom evaluator class goes in @evaltrace.suite(..., evaluator_types=*',
    ),
    'misspelt_case_evaluator': (
        'cases:\n  - name: a\n    inputs: {text: x}\n    evaluators:\n      - EqualsExpectd: {}\n',
        "datasets/bad.yaml: case 'a' (#1): unknown evaluator 'EqualsExpectd'; did you mean 'EqualsExpected'?",
    ),
    'input_type': (
        'cases:\n  - name: first\n    inputs: {text: hi}\n  - name: broken\n    inputs: {txt: hi}\n',
        "datasets/bad.yaml: case 'broken' (#2), field inputs.text: Field required*",
    ),
}


@pytest.mark.parametrize('kind', sorted(BAD_INPUTS))
def test_a_bad_dataset_errors_its_suite_only(project: EvalProject, upper_cases: Any, kind: str) -> None:
    text, message = BAD_INPUTS[kind]
    project.write('datasets/bad.yaml', text)
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write(
        'evals/test_bad.py',
        """
        import evaltrace
        from pydantic import BaseModel

        class Inputs(BaseModel):
            text: str

        @evaltrace.suite('datasets/bad.yaml')
        def test_bad(inputs: Inputs) -> str:
            return inputs.text
        """,
    )
    project.write('evals/test_good.py', COUNTING_SUITE.format(options='').replace("'wrong'", 'inputs.upper()'))
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([f'*evaltrace: bad dataset: {message}'])
    assert 'Traceback' not in result.stdout.str()


def test_bad_setting_is_a_usage_error(project: EvalProject) -> None:
    result = project.pytester.runpytest_inprocess('--evaltrace-max-concurrency=0')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ['*evaltrace: bad value for max_concurrency from option --evaltrace-max-concurrency: *']
    )


def test_report_path_setting_and_schema(
    project: EvalProject, upper_cases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write('evals/test_words.py', COUNTING_SUITE.format(options=''))
    monkeypatch.setenv('EVALTRACE_REPORT', 'from-env.json')
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider').assert_outcomes(passed=2)
    report = project.report('from-env.json')
    jsonschema.validate(report, SCHEMA)
    assert report['complete'] is True
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '--evaltrace-report=from-cli.json')
    assert (project.path / 'from-cli.json').exists()


def test_plain_tests_beside_evals_are_untouched(project: EvalProject) -> None:
    project.write('tests/test_plain.py', 'def test_one():\n    assert 1 + 1 == 2\n')
    result = project.pytester.runpytest_inprocess('tests', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=1)
    assert 'evaltrace summary' not in result.stdout.str()
    assert not (project.path / '.evaltrace').exists()


LIFECYCLE_SUITE = """
from dataclasses import dataclass
from pathlib import Path

import evaltrace
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator, EvaluatorContext
from pydantic_evals.lifecycle import CaseLifecycle


class Recorded(CaseLifecycle):
    async def setup(self) -> None:
        if self.case.inputs == 'broken':
            raise RuntimeError('no fixture database for this case')
        with Path('lifecycle.log').open('a') as f:
            f.write(f'setup {self.case.name}\\n')

    async def prepare_context(self, ctx: EvaluatorContext) -> EvaluatorContext:
        ctx.metrics['output_length'] = len(ctx.output)
        return ctx

    async def teardown(self, result) -> None:
        with Path('lifecycle.log').open('a') as f:
            f.write(f'teardown {self.case.name} {type(result).__name__}\\n')


@dataclass
class ShortOutput(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        return ctx.metrics['output_length'] <= 5


def make_lifecycle(case: Case) -> Recorded:
    if case.name == 'unmade':
        raise RuntimeError('cannot make a lifecycle for this case')
    return Recorded(case)


CASES = [
    Case(name='short', inputs='abc'),
    Case(name='long', inputs='abcdefgh'),
    Case(name='bad', inputs='broken'),
    Case(name='unmade', inputs='x'),
]


@evaltrace.suite(Dataset(name='life', cases=CASES, evaluators=[ShortOutput()]), lifecycle=make_lifecycle)
def test_life(inputs: str) -> str:
    return inputs.upper()
"""


def test_a_suite_lifecycle_runs_around_each_case(project: EvalProject, capfire: CaptureLogfire) -> None:
    """The suite's `lifecycle` hooks run for every case, inside evaltrace's own (cassette, verdict on the root)."""
    project.write('evals/test_life.py', LIFECYCLE_SUITE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=1, failed=3)
    cases = {c['case']: c for c in project.report()['cases']}
    statuses = {name: c['status'] for name, c in cases.items()}
    assert statuses == {'short': 'passed', 'long': 'failed', 'bad': 'error', 'unmade': 'error'}
    assert 'no fixture database for this case' in cases['bad']['failures'][0]
    assert 'cannot make a lifecycle for this case' in cases['unmade']['failures'][0]
    roots = [s for s in capfire.exporter.exported_spans if (s.attributes or {}).get('evaltrace.case')]
    stamped = {
        str((r.attributes or {})['case']).split('[')[1][:-1]: (r.attributes or {})['evaltrace.status'] for r in roots
    }
    assert stamped == statuses  # the verdict is on each case's root, an unmade lifecycle included
    log = sorted((project.path / 'lifecycle.log').read_text().splitlines())
    assert log == [
        'setup long',
        'setup short',
        'teardown bad ReportCaseFailure',
        'teardown long ReportCase',
        'teardown short ReportCase',
    ]


BEARER = 'Bearer tok_9f8e7d6c5b4a39281706'
SK_KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234'
CUSTOM = 'ACME-SECRET-778899'

LEAKY_SUITE = f"""
import evaltrace

@evaltrace.suite('datasets/leaky.yaml')
def test_leaky(inputs: dict) -> str:
    if inputs['mode'] == 'raise':
        raise RuntimeError('provider rejected {SK_KEY}')
    return 'the key is {SK_KEY} and the ticket {CUSTOM}'
"""


def test_secrets_never_reach_the_report_the_terminal_or_junit(project: EvalProject, monkeypatch: Any) -> None:
    """API keys and Authorization values in inputs, outputs, failures and tracebacks are scrubbed from every output."""
    cases = [
        {'name': 'echo', 'inputs': {'mode': 'echo', 'headers': {'Authorization': BEARER}}, 'expected_output': 'no key'},
        {'name': 'boom', 'inputs': {'mode': 'raise', 'api_key': 'plain-value-123'}},
    ]
    project.dataset('leaky', cases, ['EqualsExpected'])
    project.write('evals/test_leaky.py', LEAKY_SUITE)
    monkeypatch.setenv('EVALTRACE_SCRUB_PATTERNS', r'ACME-SECRET-\d+')
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '--junitxml=junit.xml')
    result.assert_outcomes(failed=2)
    outputs = {
        'terminal': result.stdout.str() + result.stderr.str(),
        'report': (project.path / '.evaltrace/report.json').read_text(encoding='utf-8'),
        'junit': (project.path / 'junit.xml').read_text(encoding='utf-8'),
        'html': json.dumps(read_page_data((project.path / '.evaltrace/report.html').read_text(encoding='utf-8'))),
    }
    for where, text in outputs.items():
        for secret in ('tok_9f8e7d6c5b4a39281706', SK_KEY, CUSTOM, 'plain-value-123'):
            assert secret not in text, f'{secret} reached the {where}'
    got = project.cases()
    assert got['echo']['output'] == 'the key is [Scrubbed] and the ticket [Scrubbed]'
    assert got['echo']['inputs']['headers']['Authorization'].startswith('[Scrubbed')
    assert got['boom']['error']['message'] == 'RuntimeError: provider rejected [Scrubbed]'
    assert got['boom']['inputs']['mode'] == 'raise'  # the rest of the data is kept


COLLIDING_SUITE = """
import pytest
import evaltrace


@pytest.mark.parametrize('variant', ['b-c', 'c'])
@evaltrace.suite('datasets/collide.yaml')
def test_collide(inputs: str, variant: str) -> str:
    return inputs if variant == 'b-c' else 'WRONG'
"""


def test_two_items_with_one_node_id_are_errors_never_each_others_results(project: EvalProject) -> None:
    """Case `a` under `b-c` and case `a-b` under `c` both get the id `[a-b-c]`: results keyed by node id would mix."""
    project.dataset(
        'collide',
        [
            {'name': 'a', 'inputs': 'a', 'expected_output': 'a'},
            {'name': 'a-b', 'inputs': 'a-b', 'expected_output': 'a-b'},
        ],
        ['EqualsExpected'],
    )
    project.write('evals/test_collide.py', COLLIDING_SUITE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '-rE')
    # `a` under `b-c` and `a-b` under `c`: errors; `a-b` under `b-c` passes; `a` under `c` fails (its own result).
    result.assert_outcomes(passed=1, failed=1, errors=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            '*evaltrace: node id collision: evals/test_collide.py::test_collide[[]a-b-c[]] is the id of 2 items '
            "(case 'a' of *test_collide[[]b-c[]], case 'a-b' of *test_collide[[]c[]])*"
        ]
    )
    report = project.report()
    by_item = {(c['nodeid'], c['case']): c['status'] for c in report['cases']}
    assert by_item == {
        ('evals/test_collide.py::test_collide[a-b-b-c]', 'a-b'): 'passed',
        ('evals/test_collide.py::test_collide[a-c]', 'a'): 'failed',
    }
    assert report['complete'] is True


SKIPPING_SUITE = """
import pytest
import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    if inputs == 'word0':
        pytest.skip('needs an API key')
    if inputs == 'word1':
        pytest.xfail('known to fail')
    if inputs == 'word2':
        pytest.fail('explicit failure')
    return inputs.upper()
"""


def test_a_task_that_calls_pytest_skip_xfail_or_fail_ends_its_case_so_not_as_an_error(
    project: EvalProject, upper_cases: Any
) -> None:
    project.dataset('words', upper_cases(4), ['EqualsExpected'])
    project.write('evals/test_words.py', SKIPPING_SUITE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '-rsx')
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1)
    assert result.ret == 1
    assert 'needs an API key' in result.stdout.str() and 'explicit failure' in result.stdout.str()
    assert 'internal error' not in result.stdout.str()
    statuses = {name: c['status'] for name, c in project.cases().items()}
    assert statuses == {'c0': 'skipped', 'c1': 'skipped', 'c2': 'failed', 'c3': 'passed'}
    cases = project.cases()
    assert (cases['c0']['xfailed'], cases['c0']['failures']) == (False, ['needs an API key'])
    assert (cases['c1']['xfailed'], cases['c1']['failures']) == (True, ['known to fail'])
    assert cases['c3']['xfailed'] is False
    # Each keeps the link to its own trace, as any failed case does.
    assert all(c['trace_id'] for c in project.cases().values())
    assert 'no trace' not in result.stdout.str()
    # And the root of that trace, in the local store, carries the case's status (not the `error` of a case whose
    # task raised): the outcome ends pydantic-evals' case span before the case's result is made.
    con = open_store(project.path / '.evaltrace' / 'traces.duckdb')
    try:
        stamped = {
            name: con.execute(
                "SELECT attributes->>'evaltrace.status' FROM records WHERE trace_id = ? AND span_id = ?",
                [c['trace_id'], c['span_id']],
            ).fetchone()
            for name, c in project.cases().items()
        }
    finally:
        con.close()
    assert stamped == {name: (status,) for name, status in statuses.items()}
