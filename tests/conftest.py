"""Shared fixtures for evaltrace's own tests: an eval project inside pytester, and reading what a run left."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# In-process inner runs (pytester.runpytest_inprocess) drop the modules they imported afterwards. These must be
# imported once here instead: duckdb's extension cannot load twice, and re-imported instrumentation would stack.
import duckdb  # noqa: F401
import httpx2  # noqa: F401
import logfire._internal.integrations.httpx  # noqa: F401  # pyright: ignore[reportPrivateImportUsage]
import openai  # noqa: F401
import pydantic_ai.models.function
import pydantic_ai.models.openai
import pydantic_ai.providers.openai  # noqa: F401
import pydantic_evals.evaluators  # noqa: F401
import pytest

import evaltrace

for _module in pkgutil.iter_modules(evaltrace.__path__):
    importlib.import_module(f'evaltrace.{_module.name}')  # hooks installed by a module (_replay, _faults) stay single

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


# Variables that change what an inner run does. Exported around the outer run (a developer's shell, a CI job), they
# would reach every inner run; each test sets the ones it is about itself.
SEALED_PREFIXES = ('EVALTRACE_', 'GITHUB_', 'LOGFIRE_', 'OTEL_', 'DEMO_')


@pytest.fixture(autouse=True)
def _sealed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs see none of the outer environment's evaltrace, GitHub, Logfire, OpenTelemetry or demo settings."""
    for name in list(os.environ):
        if name.startswith(SEALED_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester) -> EvalProject:
    """An empty eval project (pyproject.toml, a priced FunctionModel helper module) in pytester's folder."""
    p = EvalProject(pytester)
    p.write('pyproject.toml', '[tool.pytest.ini_options]\n')
    p.write('helpers_models.py', PRICED_MODEL)
    pytester.syspathinsert()
    return p


@pytest.fixture
def upper_cases() -> Callable[[int], list[dict[str, Any]]]:
    """Cases whose expected output is the upper-cased input."""

    def make(n: int) -> list[dict[str, Any]]:
        return [{'name': f'c{i}', 'inputs': f'word{i}', 'expected_output': f'WORD{i}'} for i in range(n)]

    return make
