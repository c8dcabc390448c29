from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_ai.models.function import FunctionModel

from agents.judge import judge_model
from agents.models import ConfiguredModel, ModelSettingError, read_agent_settings, resolve_model_setting


def test_default_is_offline() -> None:
    assert resolve_model_setting('model', {}, {}) == 'offline'
    assert resolve_model_setting('judge_model', {}, {}) == 'offline'


def test_environment_wins_over_pyproject() -> None:
    env = {'DEMO_AGENT_MODEL': 'openai:gpt-4o-mini'}
    assert resolve_model_setting('model', env, {'model': 'anthropic:claude-sonnet-4-5'}) == 'openai:gpt-4o-mini'


def test_pyproject_used_without_environment() -> None:
    table = {'model': 'openai:gpt-4o-mini', 'judge_model': 'anthropic:claude-sonnet-4-5'}
    assert resolve_model_setting('model', {}, table) == 'openai:gpt-4o-mini'
    assert resolve_model_setting('judge_model', {}, table) == 'anthropic:claude-sonnet-4-5'


def test_settings_are_independent() -> None:
    env = {'DEMO_JUDGE_MODEL': 'openai:gpt-4o'}
    assert resolve_model_setting('model', env, {}) == 'offline'
    assert resolve_model_setting('judge_model', env, {}) == 'openai:gpt-4o'


@pytest.mark.parametrize(
    ('env', 'table', 'where'),
    [
        ({'DEMO_AGENT_MODEL': '  '}, {}, 'environment variable DEMO_AGENT_MODEL'),
        ({}, {'model': 3}, 'pyproject.toml [tool.demo] model'),
    ],
)
def test_bad_value_names_its_source(env: dict[str, str], table: dict[str, object], where: str) -> None:
    with pytest.raises(ModelSettingError, match=re.escape(where)):
        resolve_model_setting('model', env, table)


def test_read_agent_settings(tmp_path: Path) -> None:
    pyproject = tmp_path / 'pyproject.toml'
    pyproject.write_text('[tool.demo]\nmodel = "openai:gpt-4o-mini"\n')
    assert read_agent_settings(pyproject) == {'model': 'openai:gpt-4o-mini'}
    assert read_agent_settings(tmp_path / 'missing.toml') == {}
    broken = tmp_path / 'broken.toml'
    broken.write_text('[tool.demo\n')
    with pytest.raises(ModelSettingError, match=r'broken\.toml'):
        read_agent_settings(broken)


def test_configured_model_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    offline = FunctionModel(lambda messages, info: None, model_name='offline-x')  # type: ignore[arg-type,return-value]
    capability = ConfiguredModel(lambda: offline)
    monkeypatch.delenv('DEMO_AGENT_MODEL', raising=False)
    assert capability.get_model() is offline
    monkeypatch.setenv('DEMO_AGENT_MODEL', 'openai:gpt-4o-mini')
    assert capability.get_model() == 'openai:gpt-4o-mini'


def test_offline_judge_is_priced_as_the_agents_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('DEMO_JUDGE_MODEL', raising=False)
    monkeypatch.delenv('DEMO_OFFLINE_PRICED_AS', raising=False)
    model = judge_model()
    assert isinstance(model, FunctionModel)
    assert model.model_name == 'gpt-4o-mini'
    monkeypatch.setenv('DEMO_OFFLINE_PRICED_AS', 'anthropic:claude-3-5-haiku-latest')
    assert judge_model().model_name == 'claude-3-5-haiku-latest'
    monkeypatch.setenv('DEMO_OFFLINE_PRICED_AS', 'none')
    assert judge_model().model_name == 'offline-judge'
    monkeypatch.setenv('DEMO_JUDGE_MODEL', 'test')
    assert judge_model().model_name == 'test'
