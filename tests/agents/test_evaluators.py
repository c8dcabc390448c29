from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import logfire
import pytest
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator

from agents.analyst_review import AnalystDeps, analyse, reviewer_agent
from agents.evaluators import (
    AgentsRanInOrder,
    OrderLookedUp,
    ReadOnlySql,
    SameRowsAsExpected,
    mentioned_order_ids,
    rows_match,
)
from agents.support import SupportDeps, TicketInput, triage_agent
from agents.text_to_sql import SqlAnswer

pytestmark = pytest.mark.anyio


async def _verdicts(task: Any, evaluator: Evaluator[Any, Any, Any], *cases: Case[Any, Any, Any]) -> dict[str, Any]:
    """Run `cases` through `task` and return each case's single assertion as (value, reason)."""
    report = await Dataset(name='t', cases=list(cases), evaluators=[evaluator]).evaluate(task, progress=False)
    assert not report.failures
    return {c.name: next((a.value, a.reason) for a in c.assertions.values()) for c in report.cases}


def test_mentioned_order_ids() -> None:
    text = 'About ORD-1004, order 1006, order #1007, order number 1008 and #1019; not 2024 or ORD-99.'
    assert mentioned_order_ids(text) == ['ORD-1004', 'ORD-1006', 'ORD-1007', 'ORD-1008', 'ORD-1019']


def test_rows_match() -> None:
    assert rows_match([(1, 'a'), (2.0, 'b')], [(2, 'b'), (1.0, 'a')], ordered=False)
    assert not rows_match([(1, 'a'), (2, 'b')], [(2, 'b'), (1, 'a')], ordered=True)
    assert rows_match([(0.1 + 0.2,)], [(0.3,)], ordered=True)
    assert not rows_match([(1,)], [(1,), (1,)], ordered=False)


async def test_order_looked_up(instrumented: None) -> None:
    deps = SupportDeps()

    async def task(inputs: TicketInput) -> Any:
        return (await triage_agent.run(inputs.message, deps=deps)).output

    verdicts = await _verdicts(
        task,
        OrderLookedUp(),
        Case(name='prefixed', inputs=TicketInput(message='Where is ORD-1004?')),
        Case(name='bare_number', inputs=TicketInput(message='Where is my order 1006?')),
        Case(name='no_order', inputs=TicketInput(message='How do I reset my password?')),
    )
    assert verdicts == {
        'prefixed': (True, 'Looked up ORD-1004.'),
        'bare_number': (False, 'Mentioned ORD-1006 but never looked it up.'),
        'no_order': (True, 'The message mentions no order.'),
    }


async def test_read_only_sql(tmp_path: Path) -> None:
    path = tmp_path / 'scratch.sqlite'

    async def task(sql: str) -> None:
        conn = logfire.instrument_sqlite3(sqlite3.connect(path))
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    verdicts = await _verdicts(
        task,
        ReadOnlySql(),
        Case(name='select', inputs='SELECT 1'),
        Case(name='write', inputs='CREATE TABLE t (x INTEGER)'),
    )
    assert verdicts == {
        'select': (True, '1 statement(s), all SELECT.'),
        'write': (False, 'Ran a non-SELECT statement: CREATE TABLE t (x INTEGER)'),
    }


async def test_same_rows_as_expected() -> None:
    async def task(sql: str) -> SqlAnswer:
        return SqlAnswer(sql=sql)

    def case(name: str, sql: str, expected: str) -> Case[str, SqlAnswer, Any]:
        return Case(name=name, inputs=sql, expected_output=SqlAnswer(sql=expected))

    verdicts = await _verdicts(
        task,
        SameRowsAsExpected(),
        case('same_rows', 'SELECT COUNT(id) FROM customers', 'SELECT COUNT(*) FROM customers'),
        case('different_rows', 'SELECT COUNT(*) FROM orders', 'SELECT COUNT(*) FROM customers'),
        case(
            'wrong_order', 'SELECT name FROM products ORDER BY price', 'SELECT name FROM products ORDER BY price DESC'
        ),
        case('broken', 'SELECT nope FROM customers', 'SELECT 1'),
        case('refused', '', ''),
        case('should_refuse', 'SELECT 1', ''),
    )
    assert {name: value for name, (value, _) in verdicts.items()} == {
        'same_rows': True,
        'different_rows': False,
        'wrong_order': False,
        'broken': False,
        'refused': True,
        'should_refuse': False,
    }
    assert verdicts['broken'][1] == 'The query fails: no such column: nope'


async def test_agents_ran_in_order(instrumented: None) -> None:
    deps = AnalystDeps()

    async def task(question: str) -> Any:
        if question == 'reviewer only':
            return (await reviewer_agent.run('Question: x\n\nBrief:\n{"headline": "x", "body": ""}', deps=deps)).output
        return await analyse(question, deps)

    verdicts = await _verdicts(
        task,
        AgentsRanInOrder(agents=['analyst', 'reviewer']),
        Case(name='revised', inputs='Break down revenue by product category.'),
        Case(name='reviewer_only', inputs='reviewer only'),
    )
    assert verdicts == {
        'revised': (True, 'analyst -> reviewer -> analyst -> reviewer'),
        'reviewer_only': (False, 'Agents ran as reviewer.'),
    }
