"""The agent under evaluation. It runs offline on a deterministic `FunctionModel` until you give it a real model.

To evaluate a real model instead, pass a pydantic-ai model string: `Agent('openai:gpt-4o-mini', ...)` (with
`OPENAI_API_KEY` set), or keep this agent and override its model in a fixture with `agent.override(model=...)`.
"""

from __future__ import annotations

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

__all__ = ('agent', 'offline_model')

FACTS = {
    'capital of france': 'The capital of France is Paris.',
    'largest planet': 'Jupiter is the largest planet of the solar system.',
    'boiling point of water': 'Water boils at 100 °C at sea level.',
}


def _question(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ''


def offline_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A stand-in for an LLM: answers from `FACTS`, and admits it does not know anything else."""
    question = _question(messages).lower()
    answer = next((fact for topic, fact in FACTS.items() if topic in question), "I don't know.")
    return ModelResponse(parts=[TextPart(answer)])


# Reported under a real model's name, so genai-prices prices its (estimated) tokens as that model's: the summary
# shows what the run would have cost on it, labelled "offline model, priced as openai:gpt-4o-mini".
offline_model = FunctionModel(offline_answer, model_name='gpt-4o-mini')

agent = Agent(offline_model, instructions='Answer in one short sentence.')
