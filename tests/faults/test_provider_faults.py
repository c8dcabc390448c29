"""Provider faults from a local OpenAI-compatible server, through the real pydantic-ai OpenAI model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.eval_project import EvalProject

FAKE_SERVER = Path(__file__).parents[1] / 'support' / 'fake_openai.py'

# Each case's prompt selects a script of replies for that case (keyed by prompt, so concurrent cases don't mix).
PROVIDER_SUITE = """
import json
from collections import defaultdict
from pathlib import Path

import logfire
import pytest
from logfire.testing import TestExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pydantic_ai import Agent

import evaltrace
from fake_openai import Reply, serve_openai

exporter = TestExporter()
logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[SimpleSpanProcessor(exporter)])

SCRIPTS = {
    '429-retry-after': [Reply.error(429, retry_after=0.05), Reply.text('fine')],
    '429-no-header': [Reply.error(429), Reply.text('fine')],
    '500': [Reply.error(500), Reply.error(503), Reply.text('fine')],
    'reset': [Reply.reset(), Reply.text('fine')],
    'stall': [Reply.stall(), Reply.text('fine')],
    'always-429': [Reply.error(429, retry_after=0.01)] * 10,
    'always-reset': [Reply.reset()] * 10,
}
seen = defaultdict(int)


def responder(request):
    prompt = request.json['messages'][-1]['content']
    n = seen[prompt]
    seen[prompt] += 1
    return SCRIPTS[prompt][min(n, len(SCRIPTS[prompt]) - 1)]


@pytest.fixture(scope='module')
def server():
    with serve_openai(responder) as s:
        yield s
    Path('requests.json').write_text(json.dumps(dict(seen)))
    spans = exporter.exported_spans_as_dict()
    Path('spans.json').write_text(json.dumps([
        {'name': s['name'], 'trace_id': s['context']['trace_id'], 'attributes': s['attributes']} for s in spans
    ], default=str))


@evaltrace.suite('datasets/prompts.yaml', max_concurrency=8)
async def test_provider(inputs: str, server) -> str:
    agent = Agent(server.model('gpt-4o-mini'), model_settings={'timeout': 0.5})
    async with agent:
        return (await agent.run(inputs)).output
"""


def test_provider_faults_are_retried_bounded_and_traced(project: EvalProject) -> None:
    names = ['429-retry-after', '429-no-header', '500', 'reset', 'stall', 'always-429', 'always-reset']
    project.dataset('prompts', [{'name': n, 'inputs': n} for n in names])
    project.write('evals/test_provider.py', PROVIDER_SUITE)
    project.write('fake_openai.py', FAKE_SERVER.read_text())
    project.write('pyproject.toml', '[tool.pytest.ini_options]\n\n[tool.evaltrace]\nretry_attempts = 3\n')
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 1, result.stdout.str()
    got: dict[str, Any] = project.cases()
    assert {k: v['status'] for k, v in got.items()} == {
        '429-retry-after': 'passed',
        '429-no-header': 'passed',
        '500': 'passed',
        'reset': 'passed',
        'stall': 'passed',
        'always-429': 'error',
        'always-reset': 'error',
    }
    requests = json.loads((project.path / 'requests.json').read_text())
    # the provider saw exactly the attempts needed, and never more than retry_attempts (no SDK retries on top)
    assert requests == {
        '429-retry-after': 2,
        '429-no-header': 2,
        '500': 3,
        'reset': 2,
        'stall': 2,
        'always-429': 3,
        'always-reset': 3,
    }
    assert '429' in got['always-429']['failures'][0]
    assert 'Connection error' in got['always-reset']['failures'][0] or 'Connect' in got['always-reset']['failures'][0]
    spans = json.loads((project.path / 'spans.json').read_text())
    retries: dict[str, list[str]] = {}
    for s in spans:
        if s['name'].startswith('evaltrace retry'):
            retries.setdefault(s['trace_id'], []).append(s['attributes']['fault'])
    by_case = {name: retries.get(int(got[name]['trace_id'], 16), []) for name in got}
    assert by_case['429-retry-after'] == ['HTTP 429']
    assert by_case['500'] == ['HTTP 500', 'HTTP 503']
    assert by_case['always-429'] == ['HTTP 429', 'HTTP 429']
    assert len(by_case['reset']) == 1
    assert by_case['reset'][0].startswith(('RemoteProtocolError', 'ReadError', 'Connect'))
    assert len(by_case['stall']) == 1
    assert 'Timeout' in by_case['stall'][0]
    retry_after = [s for s in spans if s['name'].startswith('evaltrace retry') and s['attributes'].get('retry_after_s')]
    assert {s['attributes']['retry_after_s'] for s in retry_after} >= {0.05, 0.01}
