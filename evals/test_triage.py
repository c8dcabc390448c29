"""Support triage: category, priority and escalation against labels, order lookups in the trace, reply quality."""

from __future__ import annotations

import evaltrace
from agents.schemas import TRIAGE_EVALUATORS
from agents.support import SupportDeps, TicketInput, Triage, triage_agent
from evaltrace import Gate


@evaltrace.suite(
    'datasets/triage.yaml', evaluator_types=TRIAGE_EVALUATORS, max_concurrency=8, gate=Gate(min_pass_rate=0.75)
)
async def test_triage(inputs: TicketInput, support_deps: SupportDeps) -> Triage:
    result = await triage_agent.run(inputs.message, deps=support_deps)
    return result.output
