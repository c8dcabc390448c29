"""The fake OpenAI server speaks enough of the API for the real pydantic-ai OpenAI model, and injects faults."""

from __future__ import annotations

from typing import Any

import httpx
import logfire
import pytest
from logfire.testing import CaptureLogfire
from pydantic_ai import Agent

from tests.support.fake_openai import Reply, ToolCall, serve_openai

pytestmark = pytest.mark.anyio


def _model_request_spans(capfire: CaptureLogfire) -> list[dict[str, Any]]:
    spans = capfire.exporter.exported_spans_as_dict()
    return [s for s in spans if 'gen_ai.usage.input_tokens' in s['attributes']]


async def test_non_streaming_usage_and_cost(capfire: CaptureLogfire) -> None:
    with serve_openai([Reply.text('hello there', prompt_tokens=100, completion_tokens=20)]) as server:
        agent = Agent(server.model('gpt-4o-mini', api_key='sk-test-123'))
        logfire.instrument_pydantic_ai(agent)
        async with agent:
            result = await agent.run('hi')

    assert result.output == 'hello there'
    assert result.usage.input_tokens == 100
    assert result.usage.output_tokens == 20
    assert result.response.cost().total_price > 0
    [request] = server.requests
    assert request.path == '/v1/chat/completions'
    assert request.headers['authorization'] == 'Bearer sk-test-123'
    assert request.json['model'] == 'gpt-4o-mini'
    assert request.json['messages'] == [{'role': 'user', 'content': 'hi'}]
    [span] = _model_request_spans(capfire)
    assert span['attributes']['gen_ai.usage.input_tokens'] == 100
    assert span['attributes']['gen_ai.usage.output_tokens'] == 20
    # gpt-4o-mini: $0.15 / MTok input, $0.60 / MTok output (genai-prices)
    assert span['attributes']['operation.cost'] == pytest.approx(100 * 0.15e-6 + 20 * 0.6e-6)


async def test_streaming_usage_and_cost(capfire: CaptureLogfire) -> None:
    with serve_openai([Reply.text('streamed text here', prompt_tokens=50, completion_tokens=7)]) as server:
        agent = Agent(server.model('gpt-4o-mini'))
        logfire.instrument_pydantic_ai(agent)
        async with agent, agent.run_stream('hi') as stream:
            chunks = [c async for c in stream.stream_text(delta=True, debounce_by=None)]
        usage = stream.usage

    assert ''.join(chunks) == 'streamed text here'
    assert len(chunks) > 1
    assert usage.input_tokens == 50
    assert usage.output_tokens == 7
    assert server.requests[0].json['stream'] is True
    assert server.requests[0].json['stream_options'] == {'include_usage': True}
    [span] = _model_request_spans(capfire)
    assert span['attributes']['operation.cost'] == pytest.approx(50 * 0.15e-6 + 7 * 0.6e-6)


async def test_tool_calls() -> None:
    script = [Reply.tool(ToolCall('add', {'a': 2, 'b': 3})), Reply.text('5')]
    with serve_openai(script) as server:
        agent = Agent(server.model())

        @agent.tool_plain
        def add(a: int, b: int) -> int:  # pyright: ignore[reportUnusedFunction]
            return a + b

        async with agent:
            result = await agent.run('2+3?')

    assert result.output == '5'
    assert result.usage.requests == 2
    tool_message = server.requests[1].json['messages'][-1]
    assert tool_message['role'] == 'tool'
    assert tool_message['content'] == '5'


async def test_faults_over_raw_http() -> None:
    script = [
        Reply.error(429, retry_after=2),
        Reply.error(429),
        Reply.error(503),
        Reply.reset(),
        Reply.stall(),
    ]
    with serve_openai(script) as server:
        # Room for a loaded machine on the answers; the stall alone is given up on after 0.5 s (it never answers).
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            r = await client.post('/chat/completions', json={'model': 'm', 'messages': []})
            assert (r.status_code, r.headers['retry-after']) == (429, '2')
            r = await client.post('/chat/completions', json={'model': 'm', 'messages': []})
            assert r.status_code == 429
            assert 'retry-after' not in r.headers
            r = await client.post('/chat/completions', json={'model': 'm', 'messages': []})
            assert r.status_code == 503
            with pytest.raises(httpx.TransportError):
                await client.post('/chat/completions', json={'model': 'm', 'messages': []})
            with pytest.raises(httpx.ReadTimeout):
                await client.post('/chat/completions', json={'model': 'm', 'messages': []}, timeout=0.5)
    assert len(server.requests) == 5


async def test_pydantic_ai_retries_a_rate_limit_through_the_real_client() -> None:
    with serve_openai([Reply.error(429, retry_after=0.01), Reply.text('after retry')]) as server:
        agent = Agent(server.model())
        async with agent:
            result = await agent.run('hi')
    assert result.output == 'after retry'
    assert len(server.requests) == 2
    assert server.requests[1].headers['x-stainless-retry-count'] == '1'


async def test_latency_and_callable_responder() -> None:
    def answer(request: Any) -> Reply:
        return Reply.text(f'echo {request.json["messages"][-1]["content"]}')

    with serve_openai(answer, latency=0.05) as server:
        agent = Agent(server.model())
        async with agent:
            result = await agent.run('ping')
    assert result.output == 'echo ping'
    assert server.latency == 0.05


async def test_stopped_server_refuses() -> None:
    with serve_openai() as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            r = await client.post('/chat/completions', json={'model': 'm', 'messages': []})
            assert r.status_code == 200
            server.stop()
            # the pooled keep-alive connection must not keep serving after stop()
            with pytest.raises(httpx.TransportError):
                await client.post('/chat/completions', json={'model': 'm', 'messages': []})
