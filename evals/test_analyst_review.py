"""Analyst and reviewer pipeline: several agent runs per case, checked for order, approval and figures."""

from __future__ import annotations

import evaltrace
from agents.analyst_review import AnalystDeps, BriefRequest, ReviewedBrief, analyse
from agents.schemas import ANALYST_EVALUATORS
from evaltrace import Gate


@evaltrace.suite(
    'datasets/analyst_review.yaml',
    evaluator_types=ANALYST_EVALUATORS,
    max_concurrency=4,
    gate=Gate(min_pass_rate=0.7),
)
async def test_analyst_review(inputs: BriefRequest, analyst_deps: AnalystDeps) -> ReviewedBrief:
    return await analyse(inputs.question, analyst_deps)
