"""Five words and a suite upper-casing them through a priced agent: the inner project of the gating runs."""

from __future__ import annotations

__all__ = ('SUITE', 'WORDS')

WORDS = [
    {'name': 'w0', 'inputs': 'alpha', 'expected_output': 'ALPHA'},
    {'name': 'w1', 'inputs': 'beta', 'expected_output': 'BETA'},
    {'name': 'w2', 'inputs': 'gamma', 'expected_output': 'GAMMA'},
    {'name': 'bad', 'inputs': 'delta', 'expected_output': 'nope'},
    {'name': 'boom', 'inputs': 'boom', 'expected_output': 'BOOM'},
]

SUITE = """
from dataclasses import dataclass

import evaltrace
from pydantic_ai import Agent
from pydantic_evals.evaluators import Evaluator, EvaluatorContext

from helpers_models import priced_model

agent = Agent(priced_model(input_tokens=100, output_tokens=20))


@dataclass
class Quality(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> dict[str, float]:
        return {{'quality': 1.0 if ctx.output == ctx.expected_output else 0.5}}


@evaltrace.suite('datasets/words.yaml', evaluator_types=[Quality], gate={gate})
async def test_words(inputs: str) -> str:
    if inputs == 'boom':
        raise RuntimeError('boom')
    return (await agent.run(inputs)).output


def test_plain() -> None:
    assert True
"""
