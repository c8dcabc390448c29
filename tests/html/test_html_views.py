"""The HTML report's views in a real browser, on two real inner runs compared with a baseline: the verdict header,
the case list with score and assertion columns, a waterfall in tree order, the trends and the comparison.

Screenshots of each view are written to `$EVALTRACE_SCREENSHOTS` when set (to look at them), else to tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from evaltrace.cli import main as evaltrace_main
from tests.conftest import EvalProject

SUITE = """
import asyncio
from dataclasses import dataclass
from pathlib import Path

import logfire
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected, Evaluator, EvaluatorContext

import evaltrace


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        word = str(messages[0].parts[-1].content)
        return ModelResponse(parts=[ToolCallPart('shout', {'word': word})], usage=RequestUsage(input_tokens=50, output_tokens=7))
    result = str(messages[-1].parts[-1].content)
    return ModelResponse(parts=[TextPart(result)], usage=RequestUsage(input_tokens=80, output_tokens=9))


agent = Agent(FunctionModel(respond, model_name='fake-model'), name='shouter')
BROKEN = Path('broken.txt').read_text().strip()  # the word the tool gets wrong in this run


@agent.tool_plain
def shout(word: str) -> str:
    return word.upper() if word != BROKEN else 'wrong'


@dataclass
class SlowJudge(Evaluator):
    # Starts first, and opens its own span after the next evaluator has started: start order is not tree order.
    async def evaluate(self, ctx: EvaluatorContext) -> float:
        await asyncio.sleep(0.05)
        with logfire.span('judge_output run'):
            await asyncio.sleep(0.001)
        return 1.0 if ctx.output == ctx.expected_output else 0.25


@dataclass
class Quick(Evaluator):
    async def evaluate(self, ctx: EvaluatorContext) -> bool:
        await asyncio.sleep(0.001)
        return True


names = Path('cases.txt').read_text().split()
dataset = Dataset(
    name='words',
    cases=[Case(name=n, inputs=f'word{n[1:]}', expected_output=f'WORD{n[1:]}') for n in names],
    evaluators=[SlowJudge(), Quick(), EqualsExpected()],
)


@evaltrace.suite(dataset, gate=evaltrace.Gate(min_pass_rate=0.5))
async def test_words(inputs: str) -> str:
    result = await agent.run(inputs)
    return result.output
"""


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get('EVALTRACE_SCREENSHOTS') or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def two_runs(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run 1 (c2 fails), its baseline saved, then run 2 (c3 fails, c2 fixed, c4 new, c0 removed); under a gate."""
    project.write('evals/test_words.py', SUITE)
    project.write('broken.txt', 'word2')
    project.write('cases.txt', 'c0 c1 c2 c3')
    first = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert first.ret == 0  # one failing case, but the gate (pass rate >= 0.5) passes
    monkeypatch.chdir(project.path)
    assert evaltrace_main(['baseline', 'save']) == 0
    project.write('broken.txt', 'word3')
    project.write('cases.txt', 'c1 c2 c3 c4')
    second = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert second.ret == 0
    html = project.path / '.evaltrace' / 'report.html'
    return {'report': project.report(), 'html': html}


def _open(page: Any, html: Path) -> None:
    page.goto(html.resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')


def test_waterfall_is_the_span_tree_and_messages_are_shown_once(
    two_runs: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    page.locator('tr.case-row', has_text='c3').first.click()
    page.locator('.waterfall .wf-row').first.wait_for()
    names = [n.strip() for n in page.locator('.wf-row .wf-name').all_inner_texts()]
    judge = next(i for i, n in enumerate(names) if 'SlowJudge' in n)
    assert names[judge + 1] == 'judge_output run'  # its child, right under it, not under the evaluator after it
    depth = page.locator('.wf-row .wf-name').evaluate_all('els => els.map(e => parseInt(e.style.paddingLeft))')
    assert depth[judge + 1] > depth[judge]
    quick = next(i for i, n in enumerate(names) if 'Quick' in n)
    assert depth[quick] == depth[judge]
    page.screenshot(path=str(_shots(tmp_path) / 'waterfall.png'), full_page=True)

    # The second model request shows the conversation once: as messages, not again as raw attributes.
    page.locator('.wf-row', has_text='chat fake-model').nth(1).click()
    detail = page.locator('.span-detail:not([hidden])').first
    text = detail.inner_text()
    assert 'Input messages' in text
    assert text.count('"word": "word3"') == 1  # the tool call's arguments, once
    page.screenshot(path=str(_shots(tmp_path) / 'span-detail.png'), full_page=True)
