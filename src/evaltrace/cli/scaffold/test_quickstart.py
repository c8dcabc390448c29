"""An eval suite: every case of datasets/quickstart.yaml is a pytest item, run through the agent and judged.

Run it with `pytest evals/`; one case with `pytest evals/ -k france`.
"""

from __future__ import annotations

from quickstart_agent import agent

import evaltrace
from evaltrace import Gate


@evaltrace.suite('datasets/quickstart.yaml', gate=Gate(min_pass_rate=1.0))
async def test_quickstart(question: str) -> str:
    result = await agent.run(question)
    return result.output
