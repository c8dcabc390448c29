"""Record/replay through the plugin: inner pytest runs of an eval suite whose agent talks to a real local server.

The suite's task runs a pydantic-ai `Agent` on the real `OpenAIChatModel` pointed at the fake OpenAI server (its URL
comes from an environment variable set here), so recording goes through the real provider client and transport.

The inner runs are in-process; the client libraries they use stay imported for the whole session (see
tests/support/preload.py).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import logfire._internal.integrations.httpx as logfire_httpx
import pytest
import yaml
from logfire.testing import CaptureLogfire
from opentelemetry.sdk.trace import ReadableSpan

from tests.support.eval_project import EvalProject
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, serve_openai

API_KEY = 'sk-live-SECRET123456789abcdefXYZ'
ORG_SECRET = 'ACME-SECRET-7731'
"""Matches the scrub pattern configured in the inner project's ini; sent in a header and in the instructions."""
SCRUB_PATTERN = r'ACME-SECRET-\d+'

SUITE = f"""
import os

import evaltrace
import httpx2
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

STREAM = os.environ.get('REPLAY_TEST_STREAM') == '1'


@evaltrace.suite('datasets/questions.yaml', max_concurrency=20, record='once')
async def test_chat(inputs: str) -> str:
    # verify=False: plain http to 127.0.0.1; max_retries=0: a cassette miss is not retried.
    async with httpx2.AsyncClient(verify=False, headers={{'X-Org-Token': '{ORG_SECRET}'}}) as http:
        client = AsyncOpenAI(
            base_url=os.environ['REPLAY_TEST_URL'], api_key='{API_KEY}', http_client=http, max_retries=0
        )
        model = OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(openai_client=client))
        agent = Agent(model, instructions='Answer briefly. Tenant {ORG_SECRET}.')
        async with agent:
            if STREAM:
                async with agent.run_stream(inputs) as run:
                    return await run.get_output()
            return (await agent.run(inputs)).output
"""

# Fields of a case result that must be identical between the live run and its replay.
COMPARED = (
    'case',
    'status',
    'output',
    'expected_output',
    'assertions',
    'scores',
    'labels',
    'failures',
    'task_usage',
    'judge_usage',
)


def answer(prompt: str) -> str:
    return f'answer to {prompt}'


def echo(request: RecordedRequest) -> Reply:
    """Answer every prompt in its own words, with token counts that differ from case to case."""
    prompt = request.json['messages'][-1]['content']
    return Reply.text(answer(prompt), prompt_tokens=100 + len(prompt), completion_tokens=7 + len(prompt) % 5)


@pytest.fixture(autouse=True)
def _uninstrument_httpx() -> Iterator[None]:
    """Undo the plugin's global `logfire.instrument_httpx()` after each test, so later tests' spans stay their own."""
    instrumentors: list[Any] = [
        cls() for cls in (logfire_httpx.HTTPXClientInstrumentor, logfire_httpx.HTTPX2ClientInstrumentor) if cls
    ]
    before = [i.is_instrumented_by_opentelemetry for i in instrumentors]
    yield
    for instrumentor, was_instrumented in zip(instrumentors, before, strict=True):
        if instrumentor.is_instrumented_by_opentelemetry and not was_instrumented:
            instrumentor.uninstrument()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with serve_openai(echo) as s:
        yield s


@pytest.fixture
def project(project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> EvalProject:
    """The eval project with the chat suite, the scrub pattern in its ini, and the server's URL in the env."""
    monkeypatch.setenv('REPLAY_TEST_URL', server.base_url)
    for name in ('EVALTRACE_RECORD', 'EVALTRACE_CASSETTES', 'EVALTRACE_SCRUB_PATTERNS', 'REPLAY_TEST_STREAM'):
        monkeypatch.delenv(name, raising=False)
    write_ini(project)
    project.write('evals/test_chat.py', SUITE)
    write_cases(project, [('c0', 'question 0'), ('c1', 'question 1')])
    return project


def write_ini(project: EvalProject, extra: str = '') -> None:
    project.write(
        'pyproject.toml',
        f"""
        [tool.pytest.ini_options]
        evaltrace_scrub_patterns = ['{SCRUB_PATTERN}']
        {extra}
        """,
    )


def write_cases(project: EvalProject, cases: list[tuple[str, str]], wrong: tuple[str, ...] = ()) -> None:
    """Cases whose expected output is the echo server's answer (or a wrong one, for the names in `wrong`)."""
    project.dataset(
        'questions',
        [
            {'name': name, 'inputs': prompt, 'expected_output': 'no' if name in wrong else answer(prompt)}
            for name, prompt in cases
        ],
        ['EqualsExpected'],
    )


def run(project: EvalProject, *args: str) -> pytest.RunResult:
    return project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', 'evals', *args)


def cassette(project: EvalProject, case: str) -> Path:
    return project.path / 'evals' / 'cassettes' / 'test_chat' / 'test_chat' / f'{case}.yaml'


def compared(project: EvalProject) -> dict[str, dict[str, Any]]:
    return {name: {k: c[k] for k in COMPARED} for name, c in project.cases().items()}


def outcomes(project: EvalProject) -> dict[str, str]:
    return {name: c['status'] for name, c in project.cases().items()}


# --------------------------------------------------------------------------------------------------------------------
# Record, stop the server, replay


@pytest.mark.parametrize('stream', [False, True], ids=['plain', 'stream'])
def test_record_then_replay_without_the_server_is_identical(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    if stream:
        monkeypatch.setenv('REPLAY_TEST_STREAM', '1')
    write_cases(project, [('c0', 'question 0'), ('c1', 'question 1'), ('bad', 'question 2')], wrong=('bad',))
    run(project).assert_outcomes(passed=2, failed=1)
    assert len(server.requests) == 3
    assert all(bool(r.json.get('stream')) is stream for r in server.requests)
    live_report = project.report()
    live = compared(project)
    assert not any(c['replayed'] for c in live_report['cases'])
    assert all(c['task_usage']['requests'] == 1 and c['task_usage']['cost_usd'] > 0 for c in live_report['cases'])
    for name in ('c0', 'c1', 'bad'):
        assert cassette(project, name).is_file()

    server.stop()
    result = run(project, '--evaltrace-record=none')
    result.assert_outcomes(passed=2, failed=1)
    replay_report = project.report()
    assert compared(project) == live
    assert all(c['replayed'] for c in replay_report['cases'])
    for c in replay_report['cases']:
        assert c['replayed_cost_usd'] == c['task_usage']['cost_usd'] > 0

    # The summary shows the recorded cost and that nothing was spent.
    stats = replay_report['suites'][0]['stats']
    recorded_cost = live_report['suites'][0]['stats']['usage']['cost_usd']
    assert stats['usage']['cost_usd'] == pytest.approx(recorded_cost)
    assert stats['replayed_cost_usd'] == pytest.approx(recorded_cost)
    assert stats['spent_cost_usd'] == pytest.approx(0)
    result.stdout.fnmatch_lines([f'*cost ${recorded_cost:.6f}*replayed ${recorded_cost:.6f} (spent $0.000000)*'])


def _spans(capfire: CaptureLogfire) -> list[ReadableSpan]:
    return [
        s for s in capfire.exporter.exported_spans if (s.attributes or {}).get('logfire.span_type') != 'pending_span'
    ]


def _case_traces(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    """Case name -> the spans of its trace (the latest run's, when a case ran more than once)."""
    traces: dict[str, list[ReadableSpan]] = {}
    for root in spans:
        attrs = root.attributes or {}
        if attrs.get('evaltrace.case'):
            name = str(attrs['case']).rsplit('[', 1)[-1].rstrip(']')
            trace_id = root.context.trace_id  # pyright: ignore[reportOptionalMemberAccess]
            traces[name] = [s for s in spans if s.context.trace_id == trace_id]  # pyright: ignore[reportOptionalMemberAccess]
    return traces


def _shape(trace: list[ReadableSpan]) -> list[tuple[str, int, int]]:
    """Span names with the usage of the model-request spans, for comparing a live trace with a replayed one."""
    return sorted(
        (
            s.name,
            int((s.attributes or {}).get('gen_ai.usage.input_tokens', -1)),  # pyright: ignore[reportArgumentType]
            int((s.attributes or {}).get('gen_ai.usage.output_tokens', -1)),  # pyright: ignore[reportArgumentType]
        )
        for s in trace
    )


def test_replayed_trace_looks_live_plus_the_replayed_attribute(
    project: EvalProject, server: FakeOpenAI, capfire: CaptureLogfire
) -> None:
    run(project).assert_outcomes(passed=2)
    live = _case_traces(_spans(capfire))
    capfire.exporter.clear()
    server.stop()
    run(project, '--evaltrace-record=none').assert_outcomes(passed=2)
    replayed = _case_traces(_spans(capfire))
    assert set(live) == set(replayed) == {'c0', 'c1'}
    for name in ('c0', 'c1'):
        assert _shape(replayed[name]) == _shape(live[name])
        requests = [s for s in replayed[name] if 'gen_ai.usage.input_tokens' in (s.attributes or {})]
        model_requests = [s for s in requests if s.name == 'chat gpt-4o-mini']
        assert len(model_requests) == 1
        attrs = model_requests[0].attributes or {}
        assert attrs['gen_ai.usage.input_tokens'] == 100 + len(f'question {name[1]}')
        assert attrs['evaltrace.replayed'] is True
        root = next(s for s in replayed[name] if (s.attributes or {}).get('evaltrace.case'))
        assert (root.attributes or {})['evaltrace.replayed'] is True
        live_root = next(s for s in live[name] if (s.attributes or {}).get('evaltrace.case'))
        assert (live_root.attributes or {})['evaltrace.replayed'] is False
        assert not any((s.attributes or {}).get('evaltrace.replayed') for s in live[name])


def test_twenty_concurrent_cases_each_get_their_own_cassette(project: EvalProject, server: FakeOpenAI) -> None:
    server.latency = 0.05  # keeps the 20 requests in flight together
    cases = [(f'c{i}', f'question {i}') for i in range(20)]
    write_cases(project, cases)
    run(project).assert_outcomes(passed=20)
    assert len(server.requests) == 20
    for name, prompt in cases:
        data = yaml.safe_load(cassette(project, name).read_text(encoding='utf-8'))
        (interaction,) = data['interactions']
        request_body = json.loads(interaction['request']['body'])
        assert request_body['messages'][-1]['content'] == prompt
        response_body = json.loads(interaction['response']['body']['string'])
        assert response_body['choices'][0]['message']['content'] == answer(prompt)
    live = compared(project)

    server.stop()
    run(project, '--evaltrace-record=none').assert_outcomes(passed=20)
    assert compared(project) == live
    assert all(c['replayed'] for c in project.cases().values())


# --------------------------------------------------------------------------------------------------------------------
# Record modes, from each place a mode can be set


# After recording c0 and c1, c1's question changes (its cassette exists but doesn't match) and c2 is new (no cassette).
EXPECTED_BY_MODE: dict[str, tuple[dict[str, str], dict[str, bool], int]] = {
    # mode: (statuses, replayed flags, requests that reached the server)
    'none': ({'c0': 'passed', 'c1': 'error', 'c2': 'error'}, {'c0': True, 'c1': False, 'c2': False}, 0),
    'once': ({'c0': 'passed', 'c1': 'error', 'c2': 'passed'}, {'c0': True, 'c1': False, 'c2': False}, 1),
    'new': ({'c0': 'passed', 'c1': 'passed', 'c2': 'passed'}, {'c0': True, 'c1': False, 'c2': False}, 2),
    'all': ({'c0': 'passed', 'c1': 'passed', 'c2': 'passed'}, {'c0': False, 'c1': False, 'c2': False}, 3),
}


@pytest.fixture(scope='module')
def mode_server() -> Iterator[FakeOpenAI]:
    """One server for all the record-mode tests, so they can share one recording (the URL is part of a match)."""
    with serve_openai(echo) as s:
        yield s


@pytest.fixture(scope='module')
def mode_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first record-mode test leaves its recording of c0 and c1 for the others to copy."""
    return tmp_path_factory.mktemp('mode-recording') / 'cassettes'


@pytest.mark.parametrize('source', ['cli', 'env', 'ini'])
@pytest.mark.parametrize('mode', list(EXPECTED_BY_MODE))
def test_record_modes(
    project: EvalProject,
    mode_server: FakeOpenAI,
    mode_recording: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    source: str,
) -> None:
    monkeypatch.setenv('REPLAY_TEST_URL', mode_server.base_url)
    cassettes = project.path / 'evals' / 'cassettes'
    if mode_recording.is_dir():
        shutil.copytree(mode_recording, cassettes)
    else:
        mode_server.requests.clear()
        run(project).assert_outcomes(passed=2)  # the suite's mode, once: no cassettes yet, so both are recorded
        assert len(mode_server.requests) == 2
        shutil.copytree(cassettes, mode_recording)
    recorded_c1 = cassette(project, 'c1').read_text(encoding='utf-8')
    write_cases(project, [('c0', 'question 0'), ('c1', 'question one, reworded'), ('c2', 'question 2')])
    mode_server.requests.clear()

    args: list[str] = []
    if source == 'cli':
        args.append(f'--evaltrace-record={mode}')
    elif source == 'env':
        monkeypatch.setenv('EVALTRACE_RECORD', mode)
    else:
        write_ini(project, f"evaltrace_record = '{mode}'")
    run(project, *args)

    statuses, replayed, requests = EXPECTED_BY_MODE[mode]
    cases = project.cases()
    assert {name: c['status'] for name, c in cases.items()} == statuses
    assert {name: c['replayed'] for name, c in cases.items()} == replayed
    assert len(mode_server.requests) == requests
    c1_after = cassette(project, 'c1').read_text(encoding='utf-8')
    if mode in ('none', 'once'):
        assert c1_after == recorded_c1  # a refused request changes nothing on disk
    else:
        assert 'question one, reworded' in c1_after
        # `new` adds the new interaction; `all` too, and (vcrpy's rule) keeps loaded ones it didn't re-record.
        assert 'question 1"' in c1_after
    assert cassette(project, 'c2').is_file() is (mode != 'none')


def test_cli_option_beats_env_beats_ini(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project).assert_outcomes(passed=2)
    server.requests.clear()
    write_ini(project, "evaltrace_record = 'all'")
    monkeypatch.setenv('EVALTRACE_RECORD', 'none')
    run(project).assert_outcomes(passed=2)  # env none beats ini all: replayed
    assert not server.requests
    run(project, '--evaltrace-record=all').assert_outcomes(passed=2)
    assert len(server.requests) == 2


def test_a_bad_record_mode_is_a_one_line_usage_error(project: EvalProject) -> None:
    result = run(project, '--evaltrace-record=sometimes')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*bad value for record from option --evaltrace-record*sometimes*'])
    assert 'Traceback' not in result.stderr.str()


# --------------------------------------------------------------------------------------------------------------------
# Misses and corrupt cassettes


def test_none_mode_miss_is_an_error_for_that_case_with_a_diff(project: EvalProject, server: FakeOpenAI) -> None:
    run(project).assert_outcomes(passed=2)
    server.requests.clear()
    write_cases(project, [('c0', 'question 0'), ('c1', 'question one, reworded')])
    result = run(project, '--evaltrace-record=none')
    result.assert_outcomes(passed=1, failed=1)
    assert not server.requests  # no network call was attempted

    c1 = project.cases()['c1']
    assert c1['status'] == 'error'
    assert c1['error']['type'] == 'CassetteMiss'
    message = c1['failures'][0]
    assert 'evals/test_chat.py::test_chat[c1]' in message
    assert f'unmatched request: POST {server.base_url}/chat/completions' in message
    assert "record mode 'none', so no network call was made" in message
    assert '-      "content": "question 1"' in message
    assert '+      "content": "question one, reworded"' in message
    assert project.cases()['c0']['status'] == 'passed'
    # pytest shows it too: the case and the diff, no traceback.
    out = result.stdout.str()
    assert 'unmatched request: POST' in out
    assert '+      "content": "question one, reworded"' in out
    assert 'Traceback' not in out


COOKIE = 'Main ingredient of this cookie: {}'
"""A prompt whose word after `cookie:` is scrubbed (a sensitive key in free text): cassettes store `<scrubbed>`."""
INGREDIENT = {'chocolate': 'chocolate chips', 'oatmeal': 'rolled oats'}


def ingredient(request: RecordedRequest) -> Reply:
    """Answer a cookie prompt by its flavour, without echoing the prompt (an echo would be scrubbed too)."""
    prompt = request.json['messages'][-1]['content']
    return Reply.text(next((v for k, v in INGREDIENT.items() if k in prompt), '?'))


def write_cookie(project: EvalProject, flavour: str) -> None:
    project.dataset(
        'questions',
        [
            {'name': 'c0', 'inputs': 'question 0', 'expected_output': answer('question 0')},
            {'name': 'cookie', 'inputs': COOKIE.format(flavour), 'expected_output': INGREDIENT[flavour]},
        ],
        ['EqualsExpected'],
    )


@pytest.fixture
def cookie_server(server: FakeOpenAI) -> FakeOpenAI:
    """The server, answering cookie prompts by flavour and echoing the rest."""
    server.responder = lambda request: (
        ingredient(request) if 'cookie' in request.json['messages'][-1]['content'] else echo(request)
    )
    return server


def test_a_prompt_changed_only_where_the_cassette_is_scrubbed_misses(
    project: EvalProject, cookie_server: FakeOpenAI
) -> None:
    server = cookie_server
    write_cookie(project, 'chocolate')
    run(project).assert_outcomes(passed=2)
    text = cassette(project, 'cookie').read_text(encoding='utf-8')
    assert COOKIE.format('<scrubbed>') in text
    assert 'chocolate"' not in text  # the cassette holds a digest of the unscrubbed body, never the value
    server.requests.clear()

    # The same prompt replays; the oatmeal one scrubs to the same recorded text, but it is not what was recorded.
    run(project, '--evaltrace-record=none').assert_outcomes(passed=2)
    write_cookie(project, 'oatmeal')
    result = run(project, '--evaltrace-record=none')
    result.assert_outcomes(passed=1, failed=1)
    assert not server.requests
    cookie = project.cases()['cookie']
    assert cookie['status'] == 'error'
    assert cookie['error']['type'] == 'CassetteMiss'
    message = cookie['failures'][0]
    assert 'no unplayed recorded response matches' in message
    assert 'closest recorded request #1 differs only in values the cassette stores as <scrubbed>' in message
    assert 'already played' not in message
    assert 'oatmeal' not in message and 'chocolate' not in message

    # Recording it anew (`new`) adds the oatmeal exchange beside the chocolate one; each replays its own answer.
    run(project, '--evaltrace-record=new').assert_outcomes(passed=2)
    assert len(server.requests) == 1
    server.stop()
    for flavour in ('oatmeal', 'chocolate'):
        write_cookie(project, flavour)
        run(project, '--evaltrace-record=none').assert_outcomes(passed=2)
        assert project.cases()['cookie']['replayed']
        assert project.cases()['cookie']['output'] == INGREDIENT[flavour]


def test_a_cassette_does_not_let_a_guess_of_a_scrubbed_value_be_checked_cheaply(
    project: EvalProject, cookie_server: FakeOpenAI
) -> None:
    # The digest of a request with a scrubbed value travels with the cassette, salt included: someone holding it can
    # put a guess where `<scrubbed>` stands and digest the result. One HMAC a guess let a weak value be found at
    # millions of guesses a second; a memory-hard digest costs each guess tens of milliseconds and 16 MiB.
    write_cookie(project, 'chocolate')
    run(project).assert_outcomes(passed=2)
    data = yaml.safe_load(cassette(project, 'cookie').read_text(encoding='utf-8'))
    salt = data['request_digest_salt']
    (interaction,) = data['interactions']
    digest = interaction['request_digest']
    body = interaction['request']['body'].replace('Tenant <scrubbed>', f'Tenant {ORG_SECRET}')  # known to the guesser
    guess = body.replace('<scrubbed>', 'chocolate')
    canonical = json.dumps(json.loads(guess), sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
    assert digest != 'hmac-sha256:' + hmac.new(bytes.fromhex(salt), canonical, hashlib.sha256).hexdigest()
    scheme, _, value = digest.partition(':')
    assert re.fullmatch(r'[0-9a-f]{64}', value)
    params = dict(re.findall(r'([nrp])(\d+)', scheme.removeprefix('scrypt-')))
    assert scheme.startswith('scrypt-') and int(params['n']) >= 2**14 and int(params['r']) >= 8, scheme
    assert (
        digest == scheme + ':' + hashlib.scrypt(canonical, salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32).hex()
    )


def test_a_cassette_recorded_without_digests_replays_on_its_scrubbed_form(
    project: EvalProject, cookie_server: FakeOpenAI
) -> None:
    write_cookie(project, 'chocolate')
    run(project).assert_outcomes(passed=2)
    cookie_server.stop()
    # A cassette as evaltrace wrote it before request digests: no salt, no digest beside its interactions.
    for name in ('c0', 'cookie'):
        path = cassette(project, name)
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
        assert data.pop('request_digest_salt')
        for interaction in data['interactions']:
            interaction.pop('request_digest', None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding='utf-8')
    run(project, '--evaltrace-record=none').assert_outcomes(passed=2)
    assert all(c['replayed'] for c in project.cases().values())
    # Matched on the scrubbed form alone, as before: the known limit of a cassette recorded without digests.
    write_cookie(project, 'oatmeal')
    run(project, '--evaltrace-record=none').assert_outcomes(passed=1, failed=1)
    assert project.cases()['cookie']['status'] == 'failed'
    assert project.cases()['cookie']['output'] == INGREDIENT['chocolate']


def test_corrupt_cassette_is_an_error_for_that_case_alone(project: EvalProject, server: FakeOpenAI) -> None:
    run(project).assert_outcomes(passed=2)
    server.stop()
    broken = cassette(project, 'c1')
    broken.write_text('interactions: [\n  - {request: [unclosed\n', encoding='utf-8')
    result = run(project, '--evaltrace-record=none')
    result.assert_outcomes(passed=1, failed=1)
    c1 = project.cases()['c1']
    assert c1['status'] == 'error'
    assert f'corrupt cassette {broken}' in c1['failures'][0]
    assert c1['error']['type'] == 'CorruptCassette'
    assert 'internal error' not in c1['failures'][0]
    assert c1['trace_id']  # the case still has its trace
    result.stdout.fnmatch_lines([f'*case c1 error: CorruptCassette: corrupt cassette {broken}*'])
    assert 'Traceback' not in result.stdout.str()
    assert project.cases()['c0']['status'] == 'passed'


# --------------------------------------------------------------------------------------------------------------------
# Secrets


def test_planted_secrets_never_reach_cassettes_or_the_report(project: EvalProject, server: FakeOpenAI) -> None:
    run(project).assert_outcomes(passed=2)
    # The secrets really were sent: the scan below would be vacuous otherwise.
    sent = server.requests[0]
    assert sent.headers['authorization'] == f'Bearer {API_KEY}'
    assert sent.headers['x-org-token'] == ORG_SECRET
    assert ORG_SECRET in sent.body.decode()

    server.stop()
    run(project, '--evaltrace-record=none').assert_outcomes(passed=2)  # scrubbed cassettes still replay
    files = sorted((project.path / 'evals' / 'cassettes').rglob('*.yaml'))
    assert len(files) == 2
    report = project.path / '.evaltrace' / 'report.json'
    for path in (*files, report):
        text = path.read_text(encoding='utf-8')
        for secret in (API_KEY, 'SECRET123', ORG_SECRET):
            assert secret not in text, f'{secret!r} found in {path}'
    request = yaml.safe_load(files[0].read_text(encoding='utf-8'))['interactions'][0]['request']
    headers = {k.lower(): v for k, v in request['headers'].items()}
    assert headers['authorization'] == headers['x-org-token'] == ['<scrubbed>']
    assert 'Answer briefly. Tenant <scrubbed>.' in request['body']


# --------------------------------------------------------------------------------------------------------------------
# Live by default; a replayed run says so


LIVE_SUITE = SUITE.replace(", record='once'", '')


def test_live_is_the_default_no_cassette_is_read_or_written(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write('evals/test_chat.py', LIVE_SUITE)
    run(project).assert_outcomes(passed=2)
    assert not (project.path / 'evals' / 'cassettes').exists()
    # The server's answer changes (PARIS becomes BERLIN): a live run sees it, it does not replay the old one.
    server.responder = lambda request: Reply.text('BERLIN')
    result = run(project)
    result.assert_outcomes(failed=2)
    assert {c['output'] for c in project.cases().values()} == {'BERLIN'}
    assert not any(c['replayed'] or c['cassette'] for c in project.cases().values())
    assert not re.search(r'replayed \d+ of', result.stdout.str())
    assert not (project.path / 'evals' / 'cassettes').exists()


@pytest.mark.parametrize('source', ['cli', 'env', 'ini'])
def test_recording_is_turned_on_by_any_source_and_off_beats_the_suite(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    project.write('evals/test_chat.py', LIVE_SUITE)
    args = {'cli': ['--evaltrace-record=once'], 'env': [], 'ini': []}[source]
    if source == 'env':
        monkeypatch.setenv('EVALTRACE_RECORD', 'once')
    if source == 'ini':
        write_ini(project, "evaltrace_record = 'once'")
    run(project, *args).assert_outcomes(passed=2)
    assert cassette(project, 'c0').is_file()
    # A suite that records, run with the setting `off`: live, nothing read.
    project.write('evals/test_chat.py', SUITE)
    server.requests.clear()
    run(project, '--evaltrace-record=off').assert_outcomes(passed=2)
    assert len(server.requests) == 2


def test_a_replayed_run_says_so_per_suite_how_many_from_where_and_when(
    project: EvalProject, server: FakeOpenAI
) -> None:
    write_cases(project, [('c0', 'question 0'), ('c1', 'question 1'), ('c2', 'question 2')])
    run(project).assert_outcomes(passed=3)
    live = run(project, '--evaltrace-record=off')
    assert not re.search(r'replayed \d+ of', live.stdout.str())
    cassette(project, 'c2').unlink()  # c2 goes live again and is recorded anew: 2 of 3 cases replay
    result = run(project, '--evaltrace-markdown=summary.md')
    result.assert_outcomes(passed=3)
    stamp = project.cases()['c0']['recorded_at']
    assert stamp is not None and stamp.endswith('Z')
    when = stamp[:16].replace('T', ' ')
    line = f'*replayed 2 of 3 cases from evals/cassettes/test_chat/test_chat/, recorded {when} UTC*'
    result.stdout.fnmatch_lines([line])
    assert project.cases()['c0']['cassette'] == 'evals/cassettes/test_chat/test_chat/c0.yaml'
    assert project.cases()['c2']['recorded_at'] is None  # it ran live
    markdown = (project.path / 'summary.md').read_text(encoding='utf-8')
    assert '### Replayed, not live' in markdown
    assert f'replayed 2 of 3 cases from evals/cassettes/test_chat/test_chat/, recorded {when} UTC' in markdown


def test_recording_an_unchanged_exchange_again_gives_an_empty_diff(project: EvalProject, server: FakeOpenAI) -> None:
    run(project).assert_outcomes(passed=2)
    before = {name: cassette(project, name).read_text(encoding='utf-8') for name in ('c0', 'c1')}
    assert all(text.startswith('recorded_at: ') for text in before.values())
    for header in ('traceparent', 'baggage', 'date', 'x-request-id', 'idempotency-key'):
        assert f'{header}:' not in before['c0'].lower()
    run(project, '--evaltrace-record=all').assert_outcomes(passed=2)
    after = {name: cassette(project, name).read_text(encoding='utf-8') for name in ('c0', 'c1')}
    for name, text in before.items():
        diff = list(difflib.unified_diff(text.splitlines(), after[name].splitlines(), lineterm=''))
        assert not diff, '\n'.join(diff)


def test_a_loopback_server_on_another_ephemeral_port_replays(
    project: EvalProject, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project).assert_outcomes(passed=2)
    server.stop()
    with serve_openai(echo) as elsewhere:
        assert elsewhere.port != server.port
        monkeypatch.setenv('REPLAY_TEST_URL', elsewhere.base_url)
        run(project, '--evaltrace-record=none').assert_outcomes(passed=2)
        assert not elsewhere.requests
    assert all(c['replayed'] for c in project.cases().values())


def test_a_cassette_miss_is_printed_once(project: EvalProject, server: FakeOpenAI) -> None:
    run(project).assert_outcomes(passed=2)
    write_cases(project, [('c0', 'question 0'), ('c1', 'question one, reworded')])
    # -rN: pytest's short summary repeats each failure's first line, untruncated where CI is set.
    result = run(project, '--evaltrace-record=none', '-rN')
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert text.count('no unplayed recorded response matches') == 1, text
