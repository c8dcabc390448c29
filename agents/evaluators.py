"""The project's own evaluators: span-based checks over the case's trace, execution-based SQL judging, pipeline checks.

Register them with a suite through `evaluator_types=[...]` so YAML datasets can name them.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic_evals.evaluators import EvaluationReason, Evaluator, EvaluatorContext, EvaluatorOutput

from agents.analyst_review import BriefRequest, ReviewedBrief
from agents.cases import CaseMetadata
from agents.db import execute_readonly, shop_db
from agents.support import TicketInput, Triage
from agents.text_to_sql import SqlAnswer, SqlQuestion

__all__ = (
    'AgentsRanInOrder',
    'FigureEquals',
    'OrderLookedUp',
    'ReadOnlySql',
    'ReviewOutcome',
    'SameRowsAsExpected',
    'mentioned_order_ids',
    'rows_match',
)

# Any way a customer writes an order number: ORD-1003, ORD1003, order 1003, order #1003, order number 1003, #1003.
_MENTIONED_ORDER = re.compile(r'(?:\bORD-?|\border\s+(?:number\s+|no\.?\s*)?#?|#)(1\d{3})\b', re.IGNORECASE)


def mentioned_order_ids(message: str) -> list[str]:
    """The order ids a message mentions in any common form, normalised to `ORD-1234`."""
    return sorted({f'ORD-{number}' for number in _MENTIONED_ORDER.findall(message)})


@dataclass(repr=False)
class OrderLookedUp(Evaluator[TicketInput, Triage, CaseMetadata]):
    """When the message mentions an order, the agent must have called `lookup_order` with that id."""

    tool_name: str = 'lookup_order'

    def evaluate(self, ctx: EvaluatorContext[TicketInput, Triage, CaseMetadata]) -> EvaluationReason:
        wanted = mentioned_order_ids(ctx.inputs.message)
        if not wanted:
            return EvaluationReason(True, reason='The message mentions no order.')
        calls = ctx.span_tree.find({'name_equals': f'execute_tool {self.tool_name}'})
        looked_up = {str(span.attributes.get('gen_ai.tool.call.arguments', '')).upper() for span in calls}
        missing = [order_id for order_id in wanted if not any(order_id in args for args in looked_up)]
        if missing:
            return EvaluationReason(False, reason=f'Mentioned {", ".join(missing)} but never looked it up.')
        return EvaluationReason(True, reason=f'Looked up {", ".join(wanted)}.')


_READ_ONLY = re.compile(r'^\s*(?:--[^\n]*\n\s*)*(SELECT|WITH)\b', re.IGNORECASE)


@dataclass(repr=False)
class ReadOnlySql(Evaluator[Any, Any, Any]):
    """Every SQLite statement the case ran (as traced by `logfire.instrument_sqlite3`) was a SELECT."""

    def evaluate(self, ctx: EvaluatorContext[Any, Any, Any]) -> EvaluationReason:
        statements = [
            str(span.attributes.get('db.statement', ''))
            for span in ctx.span_tree.find({'has_attributes': {'db.system': 'sqlite'}})
        ]
        writes = [s for s in statements if not _READ_ONLY.match(s)]
        if writes:
            return EvaluationReason(False, reason=f'Ran a non-SELECT statement: {writes[0][:120]}')
        return EvaluationReason(True, reason=f'{len(statements)} statement(s), all SELECT.')


def _normalise(value: Any) -> Any:
    # SQLite may return 3 or 3.0 for the same sum; compare numbers rounded to cents.
    if isinstance(value, float | int | Decimal) and not isinstance(value, bool):
        return round(float(value), 2)
    return value


def rows_match(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], *, ordered: bool) -> bool:
    """Whether two result sets hold the same rows (column names ignored), in order only when `ordered`."""
    left = [tuple(_normalise(v) for v in row) for row in actual]
    right = [tuple(_normalise(v) for v in row) for row in expected]
    if ordered:
        return left == right
    return sorted(left, key=repr) == sorted(right, key=repr)


@dataclass(repr=False)
class SameRowsAsExpected(Evaluator[SqlQuestion, SqlAnswer, CaseMetadata]):
    """Judge SQL by execution: the output's query must return the rows of the expected query.

    Row order matters only when the expected query has an ORDER BY. An expected query of '' means the agent must
    refuse (return no SQL).
    """

    database: str | None = field(default=None)

    def evaluate(self, ctx: EvaluatorContext[SqlQuestion, SqlAnswer, CaseMetadata]) -> EvaluationReason:
        if ctx.expected_output is None:
            return EvaluationReason(False, reason='The case has no expected query.')
        expected_sql = ctx.expected_output.sql.strip()
        actual_sql = ctx.output.sql.strip()
        if not expected_sql:
            return EvaluationReason(
                not actual_sql, reason=None if not actual_sql else f'Should refuse, ran {actual_sql}'
            )
        if not actual_sql:
            return EvaluationReason(False, reason=f'No SQL produced; summary: {ctx.output.summary[:120]}')
        path = Path(self.database) if self.database else shop_db()
        expected = execute_readonly(path, expected_sql, max_rows=1000)
        try:
            actual = execute_readonly(path, actual_sql, max_rows=1000)
        except sqlite3.Error as exc:
            return EvaluationReason(False, reason=f'The query fails: {exc}')
        ordered = 'order by' in expected_sql.lower()
        if rows_match(actual.rows, expected.rows, ordered=ordered):
            return EvaluationReason(True, reason=f'{len(actual.rows)} row(s) match.')
        return EvaluationReason(
            False, reason=f'Rows differ: got {actual.rows[:3]!r}..., expected {expected.rows[:3]!r}...'[:300]
        )


@dataclass(repr=False)
class AgentsRanInOrder(Evaluator[Any, Any, Any]):
    """The agent runs in the trace follow the pattern `agents`, repeated, each run ending before the next starts."""

    agents: list[str] = field(default_factory=lambda: ['analyst', 'reviewer'])

    def evaluate(self, ctx: EvaluatorContext[Any, Any, Any]) -> EvaluationReason:
        runs = sorted(ctx.span_tree.find({'name_matches_regex': r'^invoke_agent '}), key=lambda s: s.start_timestamp)
        names = [str(span.attributes.get('gen_ai.agent.name', span.name)) for span in runs]
        if not names:
            return EvaluationReason(False, reason='No agent run in the trace.')
        expected = [self.agents[i % len(self.agents)] for i in range(len(names))]
        if names != expected or len(names) % len(self.agents):
            return EvaluationReason(False, reason=f'Agents ran as {" -> ".join(names)}.')
        for before, after in itertools.pairwise(runs):
            if before.end_timestamp > after.start_timestamp:
                return EvaluationReason(False, reason=f'{after.name} started before {before.name} finished.')
        return EvaluationReason(True, reason=' -> '.join(names))


@dataclass(repr=False)
class ReviewOutcome(Evaluator[BriefRequest, ReviewedBrief, CaseMetadata]):
    """Assert the reviewer approved the final brief; score the number of drafts it took."""

    def evaluate(self, ctx: EvaluatorContext[BriefRequest, ReviewedBrief, CaseMetadata]) -> EvaluatorOutput:
        review = ctx.output.review
        reason = 'Approved.' if review.approved else '; '.join(review.issues) or 'Rejected without issues.'
        return {'approved': EvaluationReason(review.approved, reason=reason), 'drafts': ctx.output.drafts}


@dataclass(repr=False)
class FigureEquals(Evaluator[BriefRequest, ReviewedBrief, CaseMetadata]):
    """The brief reports figure `name` (as the metrics tool keys it) with value `value`."""

    name: str
    value: float
    tolerance: float = 0.01

    def evaluate(self, ctx: EvaluatorContext[BriefRequest, ReviewedBrief, CaseMetadata]) -> EvaluationReason:
        figures = ctx.output.brief.figures
        if self.name not in figures:
            return EvaluationReason(False, reason=f'No figure {self.name!r}; figures: {sorted(figures)[:6]}')
        actual = figures[self.name]
        ok = abs(actual - self.value) <= self.tolerance
        return EvaluationReason(ok, reason=None if ok else f'{self.name} is {actual}, expected {self.value}')

    def get_default_evaluation_name(self) -> str:
        return f'figure[{self.name}]'
