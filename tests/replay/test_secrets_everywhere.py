"""Planted secrets of every kind, in every place a secret can enter a case, never reach any output.

One inner run records a suite whose task calls a local OpenAI-compatible server with secrets in a header, a query
parameter, a JSON key, the prompt and its exception; the server echoes the header's token in its answer. Every
output is then scanned: cassettes, report.json, the HTML report, the local trace store's spool, JUnit XML, the
markdown summary, the GitHub step summary and annotations, and the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.eval_project import EvalProject
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, serve_openai

# One secret per kind. Free-text `password=...`, a custom header, a query parameter, a JSON key, a token echoed back,
# and the well-known key prefixes.
HUNTER = 'hunter2'
HEADER_SECRET = 'hdr-7f3a9c2b1d'
QUERY_SECRET = 'qry-5e6f7a8b9c'
BODY_SECRET = 'bdy-1a2b3c4d5e'
API_KEY = 'sk-live-SECRET123456789abcdefXYZ'
PREFIXED = {
    'AKIA': 'AKIAIOSFODNN7EXAMPLE',
    'ghp_': 'ghp_' + 'a1B2c3D4e5' * 4,
    'hf_': 'hf_' + 'QwErTyUiOp' * 4,
    'xoxb-': 'xoxb-1234567890-abcdefghij',
    'pylf_v1_': 'pylf_v1_us_' + 'Zx9Yw8Vu7T' * 4,
    'gsk_': 'gsk_' + 'Mn0Pq1Rs2T' * 4,
}
SECRETS = [HUNTER, HEADER_SECRET, QUERY_SECRET, BODY_SECRET, API_KEY, *PREFIXED.values()]
LEAKY = ' '.join(PREFIXED.values())

SUITE = f"""
import os

import evaltrace
import httpx2
from openai import AsyncOpenAI


@evaltrace.suite('datasets/questions.yaml')
async def test_chat(inputs: str) -> str:
    async with httpx2.AsyncClient(verify=False) as http:
        client = AsyncOpenAI(
            base_url=os.environ['REPLAY_TEST_URL'], api_key='{API_KEY}', http_client=http, max_retries=0
        )
        response = await client.chat.completions.create(
            model='gpt-4o-mini',
            messages=[{{'role': 'user', 'content': inputs}}],
            extra_headers={{'X-Custom-Secret': '{HEADER_SECRET}'}},
            extra_query={{'password': '{QUERY_SECRET}'}},
            extra_body={{'metadata': {{'password': '{BODY_SECRET}'}}}},
        )
    answer = response.choices[0].message.content
    if 'refuse' in inputs:
        raise RuntimeError(f'login refused: password={HUNTER} and {LEAKY}')
    # The answer (which echoes the header's token) is kept out of the output: its shape is no secret's, so only the
    # cassette, which knows what the request sent, can tell it is one.
    return f'{{len(answer)}} characters, password={HUNTER} {LEAKY}'
"""


def echo_token(request: RecordedRequest) -> Reply:
    """Answer with the custom header's token in the text, as a careless server might."""
    return Reply.text(f'your token is {request.headers["x-custom-secret"]}')


@pytest.fixture
def server() -> FakeOpenAI:
    with serve_openai(echo_token) as s:
        yield s  # type: ignore[misc]


def test_planted_secrets_reach_no_output(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('REPLAY_TEST_URL', server.base_url)
    step_summary = project.path / 'step_summary.md'
    monkeypatch.setenv('GITHUB_ACTIONS', 'true')
    monkeypatch.setenv('GITHUB_STEP_SUMMARY', str(step_summary))
    project.write('evals/test_chat.py', SUITE)
    project.dataset(
        'questions',
        [
            {'name': 'ok', 'inputs': f'hello, my password={HUNTER}', 'expected_output': 'no'},
            {'name': 'refused', 'inputs': 'refuse me', 'expected_output': 'no'},
        ],
        ['EqualsExpected'],
    )
    result = project.pytester.runpytest_inprocess(
        '-p', 'no:cacheprovider', 'evals', '--evaltrace-record=once', '--junitxml=junit.xml',
        '--evaltrace-markdown=summary.md',
    )  # fmt: skip
    result.assert_outcomes(failed=2)

    # The secrets really were sent and echoed: the scan below would be vacuous otherwise.
    sent = server.requests[0]
    assert sent.headers['x-custom-secret'] == HEADER_SECRET
    assert QUERY_SECRET in sent.path
    assert sent.json['metadata'] == {'password': BODY_SECRET}
    cases = project.cases()
    assert cases['refused']['status'] == 'error' and cases['ok']['status'] == 'failed'

    outputs = {
        'terminal': result.stdout.str() + result.stderr.str(),
        **{str(p.relative_to(project.path)): p.read_text(encoding='utf-8') for p in _files(project, step_summary)},
    }
    # The page's case details and spans are gzipped blocks: scanned decoded too.
    from evaltrace.views.html import read_page_data

    decoded = json.dumps(read_page_data(outputs['.evaltrace/report.html']))
    assert '"failures"' in decoded and '"spans"' in decoded
    outputs['report.html (decoded blocks)'] = decoded
    assert any('cassettes' in name for name in outputs)
    assert any('spool' in name for name in outputs)
    assert '::error' in outputs['terminal']
    for name, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f'{secret!r} found in {name}'
    # What is left says where a secret was.
    assert 'password=[Scrubbed]' in outputs['.evaltrace/report.json']
    cassette = next(text for name, text in outputs.items() if name.endswith('ok.yaml'))
    assert 'your token is <scrubbed>' in cassette
    assert 'password=%3Cscrubbed%3E' in cassette or 'password=<scrubbed>' in cassette


def _files(project: EvalProject, step_summary: Path) -> list[Path]:
    root = project.path
    files = [
        *sorted((root / 'evals' / 'cassettes').rglob('*.yaml')),
        *sorted((root / '.evaltrace' / 'spool').rglob('*.jsonl')),
        root / '.evaltrace' / 'report.json',
        root / '.evaltrace' / 'report.html',
        root / 'junit.xml',
        root / 'summary.md',
        step_summary,
    ]
    for path in files:
        assert path.is_file(), path
    return files


PRINTING_SUITE = f"""
import logging
import sys

import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    print(f'connecting with password={HUNTER} for {{inputs}}')
    print('{PREFIXED['ghp_']}', file=sys.stderr)
    logging.getLogger('app').warning('retrying with {PREFIXED['AKIA']}')
    return inputs.upper()
"""


def test_captured_output_of_a_case_is_scrubbed(project: EvalProject) -> None:
    """What a case prints or logs is shown by pytest (-rA, a failure's sections, JUnit's system-out), scrubbed."""
    project.write('evals/test_words.py', PRINTING_SUITE)
    project.dataset(
        'words',
        [{'name': 'a', 'inputs': 'x', 'expected_output': 'X'}, {'name': 'b', 'inputs': 'y', 'expected_output': 'no'}],
        ['EqualsExpected'],
    )
    project.write('pytest.ini', '[pytest]\njunit_logging = all\n')
    result = project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', 'evals', '-rA', '--junitxml=junit.xml')
    result.assert_outcomes(passed=1, failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    junit = (project.path / 'junit.xml').read_text(encoding='utf-8')
    assert 'Captured stdout' in terminal and 'password=[Scrubbed]' in terminal  # shown, not dropped
    assert 'password=[Scrubbed]' in junit
    for name, text in {'terminal': terminal, 'junit.xml': junit}.items():
        for secret in (HUNTER, PREFIXED['ghp_'], PREFIXED['AKIA']):
            assert secret not in text, f'{secret!r} found in {name}'


RAISING_FIXTURE_SUITE = f"""
import pytest

import evaltrace


@pytest.fixture
def broken():
    raise RuntimeError('fixture boom password={HUNTER} {PREFIXED['ghp_']}')


@evaltrace.suite('datasets/words.yaml', gate=evaltrace.Gate(min_pass_rate=0.0))
async def test_broken(inputs: str, broken: None) -> str:
    return inputs
"""


def test_a_fixture_raising_with_a_secret_leaks_it_nowhere(project: EvalProject) -> None:
    """A fixture's exception is the case's setup error: shown by pytest and kept in every output, scrubbed."""
    project.write('evals/test_broken.py', RAISING_FIXTURE_SUITE)
    project.dataset('words', [{'name': 'a', 'inputs': 'x'}])
    result = project.pytester.runpytest_inprocess(
        '-p', 'no:cacheprovider', 'evals', '--junitxml=junit.xml', '--evaltrace-markdown=summary.md'
    )
    result.assert_outcomes(errors=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert 'fixture boom password=[Scrubbed]' in terminal  # the error is shown, its secret is not
    outputs = {
        'terminal': terminal,
        **{p: (project.path / p).read_text(encoding='utf-8') for p in ('junit.xml', 'summary.md')},
        **{p: (project.path / '.evaltrace' / p).read_text(encoding='utf-8') for p in ('report.json', 'report.html')},
    }
    assert project.cases()['a']['status'] == 'error'
    for name, text in outputs.items():
        for secret in (HUNTER, PREFIXED['ghp_']):
            assert secret not in text, f'{secret!r} found in {name}'


ATTRIBUTE_SUITE = f"""
import evaltrace
from pydantic_evals.dataset import increment_eval_metric, set_eval_attribute


@evaltrace.suite('datasets/words.yaml')
async def test_attrs(inputs: str) -> str:
    set_eval_attribute('note', 'login password={HUNTER} with {PREFIXED['ghp_']}')
    set_eval_attribute('api_key', '{PREFIXED['hf_']}')
    set_eval_attribute('blob', 'y' * 5000)
    increment_eval_metric('lookups', 2)
    return inputs.upper()
"""


def test_secrets_a_task_puts_in_its_attributes_reach_no_output_and_attributes_are_bounded(
    project: EvalProject,
) -> None:
    """`set_eval_attribute` values are the task's own data, like its output: scrubbed and bounded before any output."""
    from evaltrace.views.html import read_page_data

    project.write('evals/test_attrs.py', ATTRIBUTE_SUITE)
    project.dataset('words', [{'name': 'a', 'inputs': 'x', 'expected_output': 'X'}], ['EqualsExpected'])
    result = project.pytester.runpytest_inprocess(
        '-p', 'no:cacheprovider', 'evals', '--junitxml=junit.xml', '--evaltrace-markdown=summary.md',
        '--evaltrace-max-value-chars=1000',
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    case = project.cases()['a']
    attributes = case['attributes']
    assert attributes['note'] == 'login password=[Scrubbed] with [Scrubbed]'  # kept, its secrets not
    assert attributes['api_key'] != PREFIXED['hf_'] and '[Scrubbed' in attributes['api_key']
    assert len(attributes['blob']) < 1100 and 'truncated' in attributes['blob']  # max_value_chars holds for them too
    assert case['metrics'] == {'lookups': 2}
    page = (project.path / '.evaltrace' / 'report.html').read_text(encoding='utf-8')
    outputs = {
        'terminal': result.stdout.str() + result.stderr.str(),
        'report.html (decoded blocks)': json.dumps(read_page_data(page)),
        **{p: (project.path / p).read_text(encoding='utf-8') for p in ('junit.xml', 'summary.md')},
        'report.json': (project.path / '.evaltrace' / 'report.json').read_text(encoding='utf-8'),
        **{str(p): p.read_text(encoding='utf-8') for p in (project.path / '.evaltrace' / 'spool').rglob('*.jsonl')},
    }
    assert 'login password=[Scrubbed]' in outputs['report.html (decoded blocks)']  # the scan reads the case's detail
    for name, text in outputs.items():
        for secret in (HUNTER, PREFIXED['ghp_'], PREFIXED['hf_']):
            assert secret not in text, f'{secret!r} found in {name}'


AUTH_SUITE = """
import evaltrace


@evaltrace.suite('datasets/logins.yaml')
def test_auth_flow(inputs: str) -> str:
    return inputs.upper()
"""


def test_names_that_mention_a_sensitive_word_are_kept_whole(project: EvalProject) -> None:
    """`test_auth.py::test_auth_flow[...]` names a suite, not a secret: the failure's `evaltrace show` command, the
    store's node ids and span messages keep it, so the command works and `rescore` finds the suite."""
    project.write('evals/test_auth.py', AUTH_SUITE)
    logins = [
        {'name': 'login_ok', 'inputs': 'a', 'expected_output': 'A'},
        {'name': 'login_bad', 'inputs': 'b', 'expected_output': 'X'},
    ]
    project.dataset('logins', logins, ['EqualsExpected'])
    # A process of its own: logfire is configured once per process, here by evaltrace (another test's may differ).
    result = project.pytester.runpytest_subprocess('-p', 'no:cacheprovider', 'evals')
    result.assert_outcomes(passed=1, failed=1)
    assert "evaltrace show 'evals/test_auth.py::test_auth_flow[login_bad]'" in result.stdout.str()
    rows = [
        json.loads(line)
        for path in (project.path / '.evaltrace' / 'spool').rglob('*.jsonl')
        for line in path.read_text(encoding='utf-8').splitlines()
    ]
    nodeids = {r['attributes']['nodeid'] for r in rows if 'nodeid' in r['attributes']}
    assert nodeids == {f'evals/test_auth.py::test_auth_flow[{n}]' for n in ('login_ok', 'login_bad')}
    assert {r['message'] for r in rows if r['span_name'] == 'execute {task}'} == {'execute test_auth_flow'}
