"""Helpers shared by the offline `FunctionModel` policies: read the conversation, answer with tool calls or output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo

__all__ = ('final_output', 'last_user_prompt', 'retry_prompts', 'tool_call', 'tool_results')


def last_user_prompt(messages: Sequence[ModelMessage]) -> str:
    """The text of the most recent user prompt (the current run's question)."""
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart):
                    if isinstance(part.content, str):
                        return part.content
                    return '\n'.join(item for item in part.content if isinstance(item, str))
    return ''


def _current_run(messages: Sequence[ModelMessage]) -> Sequence[ModelMessage]:
    """The messages after the most recent user prompt: what the model has done for the current question."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, ModelRequest) and any(isinstance(p, UserPromptPart) for p in message.parts):
            return messages[index:]
    return messages


def tool_results(messages: Sequence[ModelMessage]) -> dict[str, list[Any]]:
    """The current run's successful tool results by tool name, oldest first, as the tools returned them."""
    results: dict[str, list[Any]] = {}
    for message in _current_run(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, ToolReturnPart) and part.outcome == 'success':
                    results.setdefault(part.tool_name, []).append(part.content)
    return results


def retry_prompts(messages: Sequence[ModelMessage]) -> list[str]:
    """The current run's retry requests (tools that raised `ModelRetry`, output validation errors), as text."""
    prompts: list[str] = []
    for message in _current_run(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, ToolReturnPart) and part.outcome != 'success':
                    prompts.append(part.model_response_str())
                elif isinstance(part, RetryFeedbackPart):
                    prompts.append(str(part.content))
    return prompts


def tool_call(*calls: tuple[str, dict[str, Any]]) -> ModelResponse:
    """A response that calls the given function tools (several run in one step)."""
    return ModelResponse(parts=[ToolCallPart(name, args) for name, args in calls])


def final_output(info: AgentInfo, output: dict[str, Any] | str) -> ModelResponse:
    """A response that ends the run with `output`: through the output tool if the agent has one, else as text."""
    if isinstance(output, str):
        return ModelResponse(parts=[TextPart(output)])
    if info.output_tools:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, output)])
    from pydantic_core import to_json

    return ModelResponse(parts=[TextPart(to_json(output).decode())])
