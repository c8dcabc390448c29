"""Which model the demo's agents and LLM judge run on: offline by default, any pydantic-ai model by setting.

These are the demo's own settings, not evaltrace's (evaltrace never reads them; it evaluates whatever model an agent
has). Each is read from the environment first, then from `[tool.demo]` in this repository's `pyproject.toml`:

| setting                   | environment variable     | `[tool.demo]` key   | default              |
| ------------------------- | ------------------------ | ------------------- | -------------------- |
| agents' model             | `DEMO_AGENT_MODEL`       | `model`             | `offline`            |
| LLM judge model           | `DEMO_JUDGE_MODEL`       | `judge_model`       | `offline`            |
| price of the offline ones | `DEMO_OFFLINE_PRICED_AS` | `offline_priced_as` | `openai:gpt-4o-mini` |

`offline` means each agent's deterministic `FunctionModel` policy. It reports under the model name of
`offline_priced_as`, so genai-prices prices its (estimated) tokens as that model's and the demo's costs and cost
gates show real figures, labelled "offline model, priced as openai:gpt-4o-mini" by evaltrace; `none` reports it as
`offline-<agent>`, unpriced. Any other model value is a pydantic-ai model string such as `openai:gpt-4o-mini` or
`anthropic:claude-sonnet-4-5`; an OpenAI-compatible local server (Ollama, vLLM) is reached with
`openai-chat:<model>` plus `OPENAI_BASE_URL`, which pydantic-ai's OpenAI provider reads itself.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

__all__ = (
    'DEFAULT_PRICED_AS',
    'OFFLINE',
    'PYPROJECT',
    'ConfiguredModel',
    'ModelSettingError',
    'offline_model',
    'read_agent_settings',
    'resolve_model_setting',
)

OFFLINE = 'offline'
DEFAULT_PRICED_AS = 'openai:gpt-4o-mini'
PYPROJECT = Path(__file__).resolve().parent.parent / 'pyproject.toml'
TABLE = 'tool.demo'

Setting = Literal['model', 'judge_model', 'offline_priced_as']
_ENV_VARS: dict[Setting, str] = {
    'model': 'DEMO_AGENT_MODEL',
    'judge_model': 'DEMO_JUDGE_MODEL',
    'offline_priced_as': 'DEMO_OFFLINE_PRICED_AS',
}
_DEFAULTS: dict[Setting, str] = {'model': OFFLINE, 'judge_model': OFFLINE, 'offline_priced_as': DEFAULT_PRICED_AS}


class ModelSettingError(ValueError):
    """A model setting has an unusable value; the message names where it came from."""


def resolve_model_setting(setting: Setting, environ: Mapping[str, str], pyproject: Mapping[str, Any]) -> str:
    """Resolve one model setting: environment variable, then pyproject, then its default.

    Args:
        setting: `model` for the agents, `judge_model` for the LLM judge, `offline_priced_as` for the name the
            offline models report under.
        environ: The environment to read, usually `os.environ`.
        pyproject: The `[tool.demo]` table.

    Returns:
        `offline`, `none` (offline_priced_as only) or a pydantic-ai model string.

    Raises:
        ModelSettingError: If a value is empty or not a string.
    """
    env_var = _ENV_VARS[setting]
    if env_var in environ:
        value: object = environ[env_var]
        source = f'environment variable {env_var}'
    elif setting in pyproject:
        value = pyproject[setting]
        source = f'pyproject.toml [{TABLE}] {setting}'
    else:
        return _DEFAULTS[setting]
    if not isinstance(value, str) or not value.strip():
        raise ModelSettingError(
            f'{source}: expected a model name such as "offline" or "openai:gpt-4o-mini", got {value!r}'
        )
    return value.strip()


@cache
def read_agent_settings(pyproject: Path = PYPROJECT) -> Mapping[str, Any]:
    """Read the `[tool.demo]` table of a pyproject file; empty when the file or table is absent."""
    try:
        data = tomllib.loads(pyproject.read_text())
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ModelSettingError(f'{pyproject}: {exc}') from None
    table: object = data.get('tool', {}).get('demo', {})
    if not isinstance(table, dict):
        raise ModelSettingError(f'{pyproject}: [{TABLE}] must be a table')
    return table  # pyright: ignore[reportUnknownVariableType]


def _setting(setting: Setting) -> str:
    return resolve_model_setting(setting, os.environ, read_agent_settings())


def offline_model(policy: Callable[[list[ModelMessage], AgentInfo], ModelResponse], agent: str) -> FunctionModel:
    """An agent's offline `FunctionModel`, reported under the `offline_priced_as` model (or `offline-<agent>`)."""
    priced_as = _setting('offline_priced_as')
    if priced_as.lower() == 'none':
        return FunctionModel(policy, model_name=f'offline-{agent}')
    provider, _, model = priced_as.rpartition(':')

    def priced(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        response = policy(messages, info)
        # FunctionModel sets the response's model name; the provider makes genai-prices pick that provider's price.
        response.provider_name = provider or None
        return response

    return FunctionModel(priced, model_name=model)


@dataclass
class ConfiguredModel(AbstractCapability[Any]):
    """Capability that picks the agent's model from the settings at the start of every run.

    Resolving per run (not at import) means a changed environment applies without re-importing the agents,
    and a real provider's client is only built when it is used.
    """

    offline: Callable[[], Model]
    """Builds the agent's offline `FunctionModel`."""

    def get_model(self) -> Model | str:
        """Return the offline model or the configured pydantic-ai model string."""
        name = _setting('model')
        return self.offline() if name == OFFLINE else name
