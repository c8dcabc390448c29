"""An eval project inside pytester's folder: its files (datasets, eval modules, a priced model) and its report."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ('PRICED_MODEL', 'EvalProject')

PRICED_MODEL = '''
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage


def priced_model(input_tokens: int = 100, output_tokens: int = 20, text: str | None = None) -> FunctionModel:
    """A deterministic model whose responses are priced by genai-prices as openai:gpt-4o-mini."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = str(messages[-1].parts[-1].content)  # type: ignore[union-attr]
        return ModelResponse(
            parts=[TextPart(text if text is not None else prompt.upper())],
            usage=RequestUsage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_name='gpt-4o-mini',
            provider_name='openai',
        )

    return FunctionModel(respond, model_name='gpt-4o-mini')
'''
"""The `helpers_models` module of every project: `priced_model()`, a FunctionModel priced as gpt-4o-mini."""


@dataclass
class EvalProject:
    """A throwaway project in pytester's folder: datasets, eval modules, and the report a run writes."""

    pytester: pytest.Pytester

    @property
    def path(self) -> Path:
        return self.pytester.path

    def write(self, relpath: str, text: str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip('\n'), encoding='utf-8')
        return target

    def dataset(self, name: str, cases: list[dict[str, Any]], evaluators: list[Any] | None = None) -> Path:
        data: dict[str, Any] = {'cases': cases}
        if evaluators is not None:
            data['evaluators'] = evaluators
        return self.write(f'datasets/{name}.yaml', json.dumps(data, indent=1))

    def report(self, relpath: str = '.evaltrace/report.json') -> dict[str, Any]:
        return json.loads((self.path / relpath).read_text(encoding='utf-8'))

    def cases(self) -> dict[str, dict[str, Any]]:
        return {c['case']: c for c in self.report()['cases']}
