from __future__ import annotations

import pytest
from pydantic_ai import ModelRetry

from agents.text_to_sql import SqlDeps, question_to_sql, run_sql, sql_agent


@pytest.mark.parametrize(
    ('question', 'sql'),
    [
        ('How many customers are in the UK?', "SELECT COUNT(*) FROM customers WHERE country = 'UK'"),
        ('How many orders were delivered?', "SELECT COUNT(*) FROM orders WHERE status = 'delivered'"),
        ('What is the status of ORD-1004?', "SELECT status FROM orders WHERE id = 'ORD-1004'"),
        ('What is the most expensive product?', 'SELECT name FROM products ORDER BY price DESC LIMIT 1'),
        ('List the audio products.', "SELECT name FROM products WHERE category = 'audio' ORDER BY name"),
    ],
)
def test_rules(question: str, sql: str) -> None:
    assert question_to_sql(question) == sql


def test_month_and_top_n() -> None:
    assert "= '2024-02'" in (question_to_sql('What was the revenue in February?') or '')
    assert (question_to_sql('top 3 best-selling products') or '').endswith('LIMIT 3')


def test_unknown_question_has_no_sql() -> None:
    assert question_to_sql('Which customers have never placed an order?') is None


def test_run_sql_returns_rows_and_retries_on_errors() -> None:
    deps = SqlDeps()
    assert run_sql(deps, 'SELECT COUNT(*) AS n FROM products') == {'columns': ['n'], 'rows': [[12]]}
    with pytest.raises(ModelRetry, match='readonly'):
        run_sql(deps, 'DELETE FROM orders')
    with pytest.raises(ModelRetry, match='no such table'):
        run_sql(deps, 'SELECT * FROM invoices')


@pytest.mark.anyio
async def test_offline_agent_runs_the_sql() -> None:
    result = await sql_agent.run('How many orders were cancelled?', deps=SqlDeps())
    assert result.output.sql == "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"
    assert result.output.summary == '1 row(s): 2'
    assert result.usage.tool_calls == 1
    assert result.response.model_name == 'gpt-4o-mini'


@pytest.mark.anyio
async def test_offline_agent_refuses_writes() -> None:
    result = await sql_agent.run('Delete all cancelled orders.', deps=SqlDeps())
    assert result.output.sql == ''
    assert result.usage.tool_calls == 0
