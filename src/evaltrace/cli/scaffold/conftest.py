"""Set-up shared by the eval suites in this folder: an offline LLM judge, so `LLMJudge` runs without an API key.

To grade with a real model, pass it to `set_default_judge_model` (e.g. `'openai:gpt-4o'`) or set `model:` on each
`LLMJudge` in the dataset.
"""

from __future__ import annotations

import re

import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_evals.evaluators.llm_as_a_judge import set_default_judge_model

_SECTION = re.compile(r'<(Output|Rubric)>\n?(.*?)\n?</\1>', re.DOTALL)


def offline_judge(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A stand-in for an LLM judge: the output passes when it contains every "quoted" term of the rubric."""
    prompt = ''
    for message in messages:
        if isinstance(message, ModelRequest):
            prompt += ''.join(
                p.content for p in message.parts if isinstance(p, UserPromptPart) and isinstance(p.content, str)
            )
    sections = dict(_SECTION.findall(prompt))
    output, rubric = sections.get('Output', ''), sections.get('Rubric', '')
    missing = [term for term in re.findall(r'"([^"]+)"', rubric) if term.lower() not in output.lower()]
    grading = {
        'reason': f'missing {", ".join(missing)}' if missing else 'every term of the rubric is there',
        'pass': not missing,
        'score': 0.0 if missing else 1.0,
    }
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, grading)])


def pytest_configure(config: pytest.Config) -> None:
    set_default_judge_model(FunctionModel(offline_judge, model_name='gpt-4o-mini'))
