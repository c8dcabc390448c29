"""One setting moves the agents and the judge from their offline models to a real provider, with no code change.

The real provider here is pydantic-ai's OpenAI chat-completions client talking to a fake OpenAI server on 127.0.0.1,
so the provider code path, the HTTP transport and the genai-prices pricing are the real ones. (`openai-chat:` is
the chat-completions API; in pydantic-ai 2.x a bare `openai:` model uses the Responses API.)
"""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price
from logfire.testing import CaptureLogfire
from pydantic_evals.evaluators.llm_as_a_judge import judge_output

from agents.judge import judge_model
from agents.text_to_sql import SqlDeps, sql_agent
from tests.support.fake_openai import Reply, ToolCall, serve_openai

pytestmark = pytest.mark.anyio

API_KEY = 'sk-evaltrace-not-a-real-key'
SQL = "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"


def _expected_cost(requests: int) -> float:
    price = calc_price(Usage(input_tokens=10, output_tokens=5), model_ref='gpt-4o-mini', provider_id='openai')
    return float(price.total_price) * requests


async def test_agent_model_setting_switches_to_a_real_provider(
    monkeypatch: pytest.MonkeyPatch, capfire: CaptureLogfire, instrumented: None
) -> None:
    replies = [
        Reply.tool(ToolCall('run_sql', {'query': SQL})),
        Reply.tool(ToolCall('final_result', {'sql': SQL, 'summary': 'Two orders were cancelled.'})),
    ]
    with serve_openai(replies) as server:
        monkeypatch.setenv('DEMO_AGENT_MODEL', 'openai-chat:gpt-4o-mini')
        monkeypatch.setenv('OPENAI_BASE_URL', server.base_url)
        monkeypatch.setenv('OPENAI_API_KEY', API_KEY)
        result = await sql_agent.run('How many orders were cancelled?', deps=SqlDeps())

    assert result.output.sql == SQL
    assert result.response.model_name == 'gpt-4o-mini'
    assert [r.json['model'] for r in server.requests] == ['gpt-4o-mini', 'gpt-4o-mini']
    assert server.requests[0].headers['authorization'] == f'Bearer {API_KEY}'
    # The tool really ran: its rows went back to the model in the second request.
    tool_message = next(m for m in server.requests[1].json['messages'] if m['role'] == 'tool')
    assert '[[2]]' in tool_message['content'].replace(' ', '')

    spans = capfire.exporter.exported_spans_as_dict()
    chats = [s['attributes'] for s in spans if s['name'] == 'chat gpt-4o-mini']
    assert len(chats) == 2
    assert all(a['gen_ai.request.model'] == 'gpt-4o-mini' for a in chats)
    assert sum(a['operation.cost'] for a in chats) == pytest.approx(_expected_cost(2))
    assert API_KEY not in str(spans)


async def test_offline_agent_model_is_priced_as_openai_gpt_4o_mini(
    monkeypatch: pytest.MonkeyPatch, capfire: CaptureLogfire, instrumented: None
) -> None:
    monkeypatch.delenv('DEMO_OFFLINE_PRICED_AS', raising=False)
    result = await sql_agent.run('How many orders were cancelled?', deps=SqlDeps())
    assert result.response.model_name == 'gpt-4o-mini'
    chats = [s['attributes'] for s in capfire.exporter.exported_spans_as_dict() if s['name'] == 'chat gpt-4o-mini']
    assert len(chats) == 2
    assert all(a['gen_ai.provider.name'] == 'function' for a in chats)  # what evaltrace labels "offline model"
    for a in chats:
        price = calc_price(
            Usage(input_tokens=a['gen_ai.usage.input_tokens'], output_tokens=a['gen_ai.usage.output_tokens']),
            model_ref='gpt-4o-mini',
            provider_id='openai',
        )
        assert a['operation.cost'] == pytest.approx(float(price.total_price))
        assert a['operation.cost'] > 0


async def test_offline_models_unpriced_when_priced_as_none(
    monkeypatch: pytest.MonkeyPatch, capfire: CaptureLogfire, instrumented: None
) -> None:
    monkeypatch.setenv('DEMO_OFFLINE_PRICED_AS', 'none')
    result = await sql_agent.run('How many orders were cancelled?', deps=SqlDeps())
    assert result.response.model_name == 'offline-sql'
    chats = [s['attributes'] for s in capfire.exporter.exported_spans_as_dict() if s['name'] == 'chat offline-sql']
    assert len(chats) == 2
    assert all('operation.cost' not in a for a in chats)
    assert all(a['gen_ai.usage.input_tokens'] > 0 for a in chats)


async def test_judge_model_setting_switches_the_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = {'reason': 'It greets.', 'pass': True, 'score': 1.0}
    with serve_openai([Reply.tool(ToolCall('final_result', verdict))]) as server:
        monkeypatch.setenv('DEMO_JUDGE_MODEL', 'openai-chat:gpt-4o-mini')
        monkeypatch.setenv('OPENAI_BASE_URL', server.base_url)
        monkeypatch.setenv('OPENAI_API_KEY', API_KEY)
        async with judge_model() as model:
            assert (model.system, model.model_name) == ('openai', 'gpt-4o-mini')
            grading = await judge_output('Hello world', 'Contains a greeting', model)
    assert (grading.pass_, grading.reason) == (True, 'It greets.')
    assert server.requests[0].json['model'] == 'gpt-4o-mini'
