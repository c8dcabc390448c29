"""Provider limits are the process's, not a suite's; replayed answers never wait out a retry back-off."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject
from tests.support.fake_openai import Reply, serve_openai

ARGS_RATE = ('evals', '-p', 'no:cacheprovider', '--evaltrace-rate-limit-rpm=1', '--evaltrace-timeout=15')

SUITE = """
import os

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
import evaltrace

@evaltrace.suite('datasets/{name}.yaml')
async def test_{name}(inputs: str) -> str:
    provider = OpenAIProvider(base_url=os.environ['FAKE_OPENAI_URL'], api_key='sk-fake-key')
    agent = Agent(OpenAIChatModel('gpt-4o-mini', provider=provider))
    async with agent:
        return (await agent.run(inputs)).output
"""


def _project(project: EvalProject, monkeypatch: pytest.MonkeyPatch, url: str, suites: dict[str, list[str]]) -> None:
    # The server runs here, outside the inner runs, so a recording and its replay talk to the same port.
    monkeypatch.setenv('FAKE_OPENAI_URL', url)
    for name, prompts in suites.items():
        project.dataset(name, [{'name': p, 'inputs': p} for p in prompts])
        project.write(f'evals/test_{name}.py', SUITE.format(name=name))


def test_the_rate_limit_is_shared_by_every_suite_of_the_process(
    project: EvalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One request a minute: the first suite's request takes the only token, so the second suite's must wait for
    # the next one and runs into its timeout. With a limiter per suite both would pass at once.
    with serve_openai([Reply.text('fine')] * 2) as server:
        _project(project, monkeypatch, server.base_url, {'first': ['one'], 'second': ['two']})
        result = project.pytester.runpytest_subprocess(*ARGS_RATE)
    result.assert_outcomes(passed=1, failed=1)
    statuses = sorted(c['status'] for c in project.report()['cases'])
    assert statuses == ['error', 'passed']
    waited = next(c for c in project.report()['cases'] if c['status'] == 'error')
    assert waited['error']['message'].startswith('TimeoutError')


def test_a_replayed_retry_does_not_wait_out_its_back_off(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded live: a 429 with `Retry-After: 1`, then the answer. The cassette then asks for 120 s (within the retry
    # budget given): replayed under a 60 s timeout, room for a loaded machine, the case passes only if the replay does
    # not wait out the back-off.
    with serve_openai([Reply.error(429, retry_after=1), Reply.text('fine')]) as server:
        _project(project, monkeypatch, server.base_url, {'busy': ['busy']})
        recorded = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '--evaltrace-record=all')
        recorded.assert_outcomes(passed=1)
        (cassette,) = (project.path / 'evals/cassettes').rglob('*.yaml')
        text = cassette.read_text()
        assert text.count("Retry-After:\n      - '1'") == 1, text
        cassette.write_text(text.replace("Retry-After:\n      - '1'", "Retry-After:\n      - '120'"))
        args = ['evals', '-p', 'no:cacheprovider', '--evaltrace-record=none', '--evaltrace-timeout=60']
        args.append('--evaltrace-retry-max-delay=300')
        replayed = project.pytester.runpytest_subprocess(*args)
    replayed.assert_outcomes(passed=1)
    assert project.cases()['busy']['replayed'] is True
