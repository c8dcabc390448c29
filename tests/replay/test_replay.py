"""Record model traffic against a real local OpenAI-compatible server, stop it, and replay from the cassettes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import logfire
import pytest
import yaml
from logfire.testing import CaptureLogfire
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from evaltrace.run.replay import (
    REPLAYED_ATTRIBUTE,
    CassetteMiss,
    CorruptCassette,
    ReplayStats,
    cassette_path,
    install,
    use_cassette,
)
from evaltrace.run.request_digest import (
    body_digest,
    digest_to_store,
    digests_agree,
    new_salt,
    valid_salt,
    with_body,
    with_digest,
)
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, serve_openai

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def openai_model(
    base_url: str, *, api_key: str = 'sk-test-key-0123456789abcdef', headers: dict[str, str] | None = None
) -> AsyncIterator[OpenAIChatModel]:
    """The real pydantic-ai OpenAI model, without SDK retries (a miss must not be retried in these tests)."""
    # verify=False: plain http to 127.0.0.1 only, and it skips loading the system trust store for every client.
    async with httpx2.AsyncClient(headers=headers, verify=False) as http_client:
        client = AsyncOpenAI(base_url=base_url, api_key=api_key, http_client=http_client, max_retries=0)
        yield OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(openai_client=client))


async def ask(
    base_url: str, prompt: str, *, stream: bool = False, instrument: bool = False, **kw: Any
) -> tuple[str, Any]:
    async with openai_model(base_url, **kw) as model:
        agent = Agent(model)
        if instrument:
            logfire.instrument_pydantic_ai(agent)
        if stream:
            async with agent.run_stream(prompt) as result:
                output = await result.get_output()
            return output, result.usage
        run = await agent.run(prompt)
        return run.output, run.usage


def echo(request: RecordedRequest) -> Reply:
    prompt = request.json['messages'][-1]['content']
    return Reply.text(f'answer to {prompt}', prompt_tokens=len(prompt), completion_tokens=3)


def model_request_spans(capfire: CaptureLogfire) -> list[dict[str, Any]]:
    return [s for s in capfire.exporter.exported_spans_as_dict() if 'gen_ai.usage.input_tokens' in s['attributes']]


@pytest.mark.parametrize('stream', [False, True], ids=['plain', 'stream'])
async def test_record_then_replay_is_identical(tmp_path: Path, capfire: CaptureLogfire, stream: bool) -> None:
    path = tmp_path / 'case.yaml'
    script = [Reply.text('Paris is the capital.', prompt_tokens=120, completion_tokens=9)]
    with serve_openai(script) as server:
        with use_cassette(path, mode='once', case='france') as recording:
            live_output, live_usage = await ask(server.base_url, 'Capital of France?', stream=stream, instrument=True)
        assert len(server.requests) == 1
    assert (recording.live, recording.recorded, recording.replayed) == (1, 1, 0)
    live_spans = model_request_spans(capfire)
    capfire.exporter.clear()

    # The server is gone: anything not answered from the cassette would fail to connect.
    with use_cassette(path, mode='none', case='france') as replay:
        output, usage = await ask(server.base_url, 'Capital of France?', stream=stream, instrument=True)

    assert (replay.live, replay.replayed, replay.is_replayed) == (0, 1, True)
    assert output == live_output == 'Paris is the capital.'
    assert usage == live_usage
    assert usage.input_tokens == 120
    assert usage.output_tokens == 9
    [live_span] = live_spans
    [replayed_span] = model_request_spans(capfire)
    assert replayed_span['attributes']['operation.cost'] == live_span['attributes']['operation.cost'] > 0
    assert replayed_span['attributes'][REPLAYED_ATTRIBUTE] is True
    assert live_span['attributes'][REPLAYED_ATTRIBUTE] is False


async def test_replayed_trace_keeps_the_httpx_span(tmp_path: Path, capfire: CaptureLogfire) -> None:
    path = tmp_path / 'case.yaml'
    with serve_openai([Reply.text('hi')]) as server, use_cassette(path, mode='once'):
        await ask(server.base_url, 'hello')
    capfire.exporter.clear()
    async with httpx2.AsyncClient() as http_client:
        logfire.instrument_httpx(http_client)
        client = AsyncOpenAI(base_url=server.base_url, api_key='sk-x', http_client=http_client, max_retries=0)
        agent = Agent(OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(openai_client=client)))
        logfire.instrument_pydantic_ai(agent)
        with use_cassette(path, mode='none'):
            assert (await agent.run('hello')).output == 'hi'
    spans = capfire.exporter.exported_spans_as_dict()
    # Other tests in this process may have instrumented httpx globally too, which doubles the httpx span.
    http_spans = [s for s in spans if s['attributes'].get('http.method') == 'POST']
    [model_span] = [s for s in spans if 'gen_ai.usage.input_tokens' in s['attributes']]
    assert any(s['parent']['span_id'] == model_span['context']['span_id'] for s in http_spans)
    assert any(s['attributes'].get(REPLAYED_ATTRIBUTE) is True for s in http_spans)
    assert model_span['attributes'][REPLAYED_ATTRIBUTE] is True
    assert all(s['attributes']['http.status_code'] == 200 for s in http_spans)


async def test_twenty_concurrent_cases_route_to_their_own_cassettes(tmp_path: Path) -> None:
    names = [f'case {i}' for i in range(20)]

    async def case(name: str, mode: Any, base_url: str) -> tuple[str, ReplayStats]:
        with use_cassette(cassette_path(tmp_path, 'evals.test_geo', 'test_capitals', name), mode=mode) as stats:
            # Interleave the cases' requests inside the one event loop.
            await asyncio.sleep(random.random() / 100)
            output, _ = await ask(base_url, f'question of {name}')
            return output, stats

    with serve_openai(echo, latency=0.02) as server:
        recorded = await asyncio.gather(*(case(n, 'once', server.base_url) for n in names))
        assert len(server.requests) == 20
    replayed = await asyncio.gather(*(case(n, 'none', server.base_url) for n in reversed(names)))

    for name, (output, stats) in zip(names, recorded, strict=True):
        assert output == f'answer to question of {name}'
        assert (stats.live, stats.recorded) == (1, 1)
    for name, (output, stats) in zip(reversed(names), replayed, strict=True):
        assert output == f'answer to question of {name}'
        assert (stats.replayed, stats.live) == (1, 0)
        cassette = yaml.safe_load(stats.path.read_text())
        [interaction] = cassette['interactions']
        assert f'question of {name}"' in interaction['request']['body']
        assert f'answer to question of {name}"' in interaction['response']['body']['string']


async def test_mode_none_without_cassette_makes_no_network_call(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    with use_cassette(tmp_path / 'missing.yaml', mode='none', case='c1') as stats, pytest.raises(CassetteMiss) as info:
        await ask(fake_openai.base_url, 'hi')
    assert fake_openai.requests == []
    assert info.value is stats.error
    assert str(info.value).startswith("case 'c1': ")
    assert f'no cassette at {tmp_path / "missing.yaml"}' in str(stats.error)
    assert not (tmp_path / 'missing.yaml').exists()


async def test_mode_once_records_then_refuses_new_requests(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = echo
    path = tmp_path / 'c.yaml'
    with use_cassette(path, mode='once') as first:
        assert (await ask(fake_openai.base_url, 'one'))[0] == 'answer to one'
    assert (first.live, len(fake_openai.requests)) == (1, 1)
    with use_cassette(path, mode='once') as second:
        assert (await ask(fake_openai.base_url, 'one'))[0] == 'answer to one'
    assert (second.replayed, second.live, len(fake_openai.requests)) == (1, 0, 1)
    with use_cassette(path, mode='once') as third, pytest.raises(CassetteMiss):
        await ask(fake_openai.base_url, 'two')
    assert third.error is not None
    assert len(fake_openai.requests) == 1
    assert len(yaml.safe_load(path.read_text())['interactions']) == 1


async def test_mode_new_replays_known_and_records_new(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = echo
    path = tmp_path / 'c.yaml'
    with use_cassette(path, mode='new'):
        await ask(fake_openai.base_url, 'one')
    with use_cassette(path, mode='new') as stats:
        assert (await ask(fake_openai.base_url, 'one'))[0] == 'answer to one'
        assert (await ask(fake_openai.base_url, 'two'))[0] == 'answer to two'
    assert (stats.replayed, stats.live, stats.recorded) == (1, 1, 1)
    assert len(fake_openai.requests) == 2
    bodies = [i['request']['body'] for i in yaml.safe_load(path.read_text())['interactions']]
    assert ['"one"' in bodies[0], '"two"' in bodies[1]] == [True, True]


async def test_mode_all_always_calls_and_rerecords(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    path = tmp_path / 'c.yaml'
    fake_openai.responder = [Reply.text('first'), Reply.text('second')]
    with use_cassette(path, mode='all'):
        assert (await ask(fake_openai.base_url, 'q'))[0] == 'first'
    with use_cassette(path, mode='all') as stats:
        assert (await ask(fake_openai.base_url, 'q'))[0] == 'second'
    assert (stats.live, stats.replayed) == (1, 0)
    assert len(fake_openai.requests) == 2
    [interaction] = yaml.safe_load(path.read_text())['interactions']  # replaced, not duplicated
    assert '"second"' in interaction['response']['body']['string']
    with use_cassette(path, mode='none'):
        assert (await ask(fake_openai.base_url, 'q'))[0] == 'second'


async def test_no_cassette_active_passes_through(fake_openai: FakeOpenAI) -> None:
    install()
    assert (await ask(fake_openai.base_url, 'hi'))[0] == 'ok'
    assert len(fake_openai.requests) == 1


async def test_secrets_never_reach_the_cassette(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_secret = 'env-secret-value-7f3a9c'
    monkeypatch.setenv('ACME_API_KEY', env_secret)
    api_key = 'sk-live-SECRET0123456789abcdefXYZ'
    header_secrets = {'x-api-key': 'hdr-secret-x-api-key-1', 'api-key': 'hdr-secret-api-key-2'}
    custom = 'acme-customer-998877'
    prompt = f'my customer id is {custom}, token {env_secret}, key {api_key}'
    reply = Reply.text(f'noted {custom}', headers={'Set-Cookie': 'session=cookie-secret-3'})
    path = tmp_path / 'secret.yaml'
    with serve_openai([reply]) as server:
        with use_cassette(path, mode='once', scrub_patterns=[r'acme-customer-\d+']):
            await ask(server.base_url, prompt, api_key=api_key, headers=header_secrets)
        assert server.requests[0].headers['x-api-key'] == header_secrets['x-api-key']  # it was really sent

    text = path.read_text()
    for secret in [api_key, env_secret, custom, *header_secrets.values(), 'cookie-secret-3', 'SECRET0123']:
        assert secret not in text
    assert '<scrubbed>' in text
    # Matching scrubs the live request the same way, so the scrubbed cassette still replays.
    with use_cassette(path, mode='none', scrub_patterns=[r'acme-customer-\d+']) as stats:
        output, _ = await ask(server.base_url, prompt, api_key=api_key, headers=header_secrets)
    assert output == 'noted <scrubbed>'
    assert stats.replayed == 1


async def test_none_mode_miss_names_the_case_and_diffs_the_closest_request(tmp_path: Path) -> None:
    path = cassette_path(tmp_path, 'evals.test_geo', 'test_capitals', 'capital of France')
    with serve_openai(echo) as server, use_cassette(path, mode='once'):
        await ask(server.base_url, 'What is the capital of France?')
        await ask(server.base_url, 'Something unrelated entirely')
    case = 'test_capitals[capital of France]'
    with use_cassette(path, mode='none', case=case) as stats, pytest.raises(CassetteMiss) as info:
        await ask(server.base_url, 'What is the capital of Spain?')
    assert info.value is stats.error
    assert len(stats.misses) == 1  # the OpenAI SDK doesn't retry it
    message = str(stats.error)
    assert message.splitlines()[0].startswith("case 'test_capitals[capital of France]': no unplayed recorded response")
    assert f'POST {server.base_url}/chat/completions' in message
    assert 'no network call was made' in message
    assert '--- recorded request #1' in message
    assert '-      "content": "What is the capital of France?",' in message
    assert '+      "content": "What is the capital of Spain?",' in message
    assert '--evaltrace-record=new' in message


@pytest.mark.parametrize(
    'content',
    ['version: 1\ninteractions: [\n  - {unclosed', 'version: 1\ninteractions:\n- request: {}\n', 'just a string\n'],
    ids=['yaml-syntax', 'bad-structure', 'not-a-mapping'],
)
async def test_corrupt_cassette_is_an_error_for_that_case_alone(
    tmp_path: Path, fake_openai: FakeOpenAI, content: str
) -> None:
    bad = tmp_path / 'bad.yaml'
    bad.write_text(content)
    good = tmp_path / 'good.yaml'
    with use_cassette(good, mode='once'):
        await ask(fake_openai.base_url, 'hi')

    async def case(path: Path) -> str:
        with use_cassette(path, mode='none'):
            return (await ask(fake_openai.base_url, 'hi'))[0]

    bad_result, good_result = await asyncio.gather(case(bad), case(good), return_exceptions=True)
    assert isinstance(bad_result, CorruptCassette)
    assert str(bad_result).startswith(f'corrupt cassette {bad}: ')
    assert '\n' not in str(bad_result)
    assert good_result == 'ok'
    assert bad.read_text() == content  # never overwritten


def test_cassette_path() -> None:
    assert cassette_path('evals/cassettes', 'test_geo', 'test_capitals', 'france') == Path(
        'evals/cassettes/test_geo/test_capitals/france.yaml'
    )
    assert cassette_path('c', 'm', 'f', 'france', repeat=2) == Path('c/m/f/france.r2.yaml')
    odd = cassette_path('c', 'm', 'f', 'a/b: "c"?')
    assert odd.parent == Path('c/m/f')
    assert '/' not in odd.name
    assert odd != cassette_path('c', 'm', 'f', 'a_b_ _c_')  # names that slug alike don't collide


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="unknown record mode 'sometimes'"),
        use_cassette(tmp_path / 'x.yaml', mode='sometimes'),
    ):  # type: ignore[arg-type]
        pass


async def test_cassettes_stay_readable_by_vcrpy(tmp_path: Path) -> None:
    import vcr

    path = tmp_path / 'compat.yaml'
    with serve_openai([Reply.text('from the cassette')]) as server, use_cassette(path, mode='once'):
        await ask(server.base_url, 'hi')

    body = {'model': 'gpt-4o-mini', 'stream': False, 'messages': [{'role': 'user', 'content': 'hi'}]}
    my_vcr = vcr.VCR(record_mode='none', match_on=['method', 'uri', 'body'])
    with my_vcr.use_cassette(str(path)) as cassette:
        async with httpx2.AsyncClient(verify=False) as client:
            response = await client.post(f'{server.base_url}/chat/completions', json=body)
    assert cassette.play_count == 1
    assert response.json()['choices'][0]['message']['content'] == 'from the cassette'


def test_request_digest_is_keyed_by_its_salt_and_blind_to_json_layout() -> None:
    salt = new_salt()
    assert valid_salt(salt) == salt
    assert valid_salt('<scrubbed>') is valid_salt(None) is None
    digest = body_digest(salt, b'{"a": 1, "b": "cookie: chocolate"}')
    assert digest.startswith('scrypt-n16384-r8-p1:')
    # Parsed JSON, as the body matcher compares it: key order and whitespace don't count, a value does.
    assert body_digest(salt, '{"b":"cookie: chocolate","a":1}') == digest
    assert body_digest(salt, b'{"a": 1, "b": "cookie: oatmeal"}') != digest
    assert body_digest(new_salt(), b'{"a": 1, "b": "cookie: chocolate"}') != digest  # no comparing across cassettes
    assert body_digest(salt, b'not json') != body_digest(salt, b'not  json')


def test_a_request_is_digested_only_when_scrubbing_changed_its_body_and_checked_under_the_stored_scheme() -> None:
    salt = new_salt()
    sent = with_body(SimpleNamespace(), salt, b'{"q": "cookie: chocolate"}')
    assert digest_to_store(sent, '{"q": "cookie: chocolate"}') is None  # stored as sent: nothing to tell apart
    stored = digest_to_store(sent, '{"q": "cookie: <scrubbed>"}')
    assert stored == body_digest(salt, b'{"q":"cookie: chocolate"}')
    recorded = with_digest(SimpleNamespace(), stored)
    assert digests_agree(recorded, with_body(SimpleNamespace(), salt, '{"q": "cookie: chocolate"}'))
    assert not digests_agree(recorded, with_body(SimpleNamespace(), salt, '{"q": "cookie: oatmeal"}'))
    # A cassette written when digests were one HMAC is still checked under it.
    legacy = with_digest(SimpleNamespace(), body_digest(salt, b'{"q": "cookie: chocolate"}', 'hmac-sha256'))
    assert digest_of_scheme(legacy) == 'hmac-sha256'
    assert digests_agree(with_body(SimpleNamespace(), salt, b'{"q": "cookie: chocolate"}'), legacy)
    assert not digests_agree(with_body(SimpleNamespace(), salt, b'{"q": "cookie: oatmeal"}'), legacy)
    assert digests_agree(SimpleNamespace(), legacy)  # a recording or request without a digest is not checked
    # Two requests sent in this run are compared by body, with no digest made.
    assert not digests_agree(
        with_body(SimpleNamespace(), salt, b'{"q": 1}'), with_body(SimpleNamespace(), salt, b'{"q": 2}')
    )


def digest_of_scheme(request: object) -> str:
    return str(vars(request)['evaltrace_request_digest']).partition(':')[0]
