"""Text-to-SQL agent: answers questions about the shop database by writing SQL and running it read-only.

The `run_sql` tool opens the database with a read-only URI and traces each statement as a span
(`logfire.instrument_sqlite3`). The offline model (`sql_policy`) is a table of question patterns, each with the SQL
it stands for; questions outside the table get no SQL, and it refuses questions that ask to change data.
"""

from __future__ import annotations

import calendar
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo

from agents._offline import final_output, last_user_prompt, retry_prompts, tool_call, tool_results
from agents.db import execute_readonly, schema_sql, shop_db
from agents.models import ConfiguredModel, offline_model

__all__ = ('SqlAnswer', 'SqlDeps', 'SqlQuestion', 'question_to_sql', 'run_sql', 'sql_agent', 'sql_policy')


class SqlQuestion(BaseModel):
    """A question about the shop's data."""

    question: str


class SqlAnswer(BaseModel):
    """The SQL that answers a question, and a one-line summary of its result."""

    sql: str = Field(description='The single read-only SELECT statement that answers the question; empty if none.')
    summary: str = Field(default='', description='The answer in one sentence.')


@dataclass
class SqlDeps:
    """The database the agent queries."""

    db_path: Path = field(default_factory=shop_db)


def run_sql(deps: SqlDeps, query: str) -> dict[str, Any]:
    """Run `query` read-only and return its columns and up to 50 rows.

    Raises:
        ModelRetry: If SQLite rejects the statement, so the model can correct it.
    """
    try:
        result = execute_readonly(deps.db_path, query, max_rows=50)
    except sqlite3.Error as exc:
        raise ModelRetry(f'SQLite error: {exc}') from None
    return {'columns': result.columns, 'rows': [list(row) for row in result.rows]}


sql_agent = Agent(
    name='text_to_sql',
    deps_type=SqlDeps,
    output_type=SqlAnswer,
    capabilities=[ConfiguredModel(lambda: offline_model(sql_policy, 'sql'))],
)


@sql_agent.instructions
def _instructions(ctx: RunContext[SqlDeps]) -> str:
    return (
        'You answer questions about an online shop by writing one SQLite SELECT statement, running it with the '
        '`run_sql` tool, and returning the statement you ran with a one-sentence summary of its result. '
        'Revenue counts orders that were not cancelled or returned. Never modify data: if asked to, return an '
        'empty `sql` and say why in the summary.\n\nSchema:\n' + schema_sql(ctx.deps.db_path)
    )


@sql_agent.tool(name='run_sql')
def _run_sql_tool(ctx: RunContext[SqlDeps], query: str) -> dict[str, Any]:
    """Run one read-only SQL statement against the shop database.

    Args:
        ctx: The run context.
        query: A single SQLite SELECT statement.
    """
    return run_sql(ctx.deps, query)


# --- The offline policy: pattern -> SQL, unit-tested in tests/agents/test_text_to_sql.py ------------------------

_COUNTRIES = {
    'uk': 'UK', 'britain': 'UK', 'england': 'UK', 'us': 'US', 'usa': 'US', 'america': 'US', 'france': 'FR',
    'germany': 'DE', 'austria': 'AT', 'india': 'IN', 'denmark': 'DK',
}  # fmt: skip
_MONTH_NAMES = tuple(name.lower() for name in calendar.month_name[1:])
_STATUSES = ('processing', 'shipped', 'delivered', 'cancelled', 'returned', 'delayed')
_CATEGORIES = ('peripherals', 'displays', 'audio', 'furniture', 'accessories')
_REVENUE_FILTER = "status NOT IN ('cancelled', 'returned')"
_WRITE_WORDS = re.compile(r'\b(delete|remove|drop|update|insert|change|set|rename|truncate)\b', re.IGNORECASE)


def _country(q: str) -> str | None:
    return next((code for word, code in _COUNTRIES.items() if re.search(rf'\b{word}\b', q)), None)


def _month(q: str) -> str | None:
    for number, name in enumerate(_MONTH_NAMES, start=1):
        if name in q:
            return f'2024-{number:02d}'
    return None


def _top_n(q: str) -> int:
    match = re.search(r'\btop (\d+)\b', q)
    return int(match.group(1)) if match else 1


def _customers_count(q: str) -> str | None:
    if 'how many customers' not in q:
        return None
    conditions: list[str] = []
    if code := _country(q):
        conditions.append(f"country = '{code}'")
    if 'plus' in q:
        conditions.append("tier = 'plus'")
    where = f' WHERE {" AND ".join(conditions)}' if conditions else ''
    return f'SELECT COUNT(*) FROM customers{where}'


def _orders_count(q: str) -> str | None:
    if 'how many orders' not in q:
        return None
    conditions = [f"status = '{s}'" for s in _STATUSES if s in q]
    if month := _month(q):
        conditions.append(f"strftime('%Y-%m', order_date) = '{month}'")
    where = f' WHERE {" AND ".join(conditions)}' if conditions else ''
    return f'SELECT COUNT(*) FROM orders{where}'


def _revenue(q: str) -> str | None:
    if 'revenue' not in q:
        return None
    if 'by category' in q or 'per category' in q:
        return (
            'SELECT p.category, ROUND(SUM(i.quantity * i.unit_price), 2) AS revenue FROM order_items i'
            ' JOIN products p ON p.id = i.product_id JOIN orders o ON o.id = i.order_id'
            f' WHERE o.{_REVENUE_FILTER} GROUP BY p.category ORDER BY revenue DESC'
        )
    if 'by month' in q or 'per month' in q or 'monthly' in q:
        return (
            "SELECT strftime('%Y-%m', order_date) AS month, ROUND(SUM(total), 2) FROM orders"
            f' WHERE {_REVENUE_FILTER} GROUP BY month ORDER BY month'
        )
    if 'by country' in q or 'per country' in q:
        return (
            'SELECT c.country, ROUND(SUM(o.total), 2) AS revenue FROM orders o JOIN customers c ON c.id = o.customer_id'
            f' WHERE o.{_REVENUE_FILTER} GROUP BY c.country ORDER BY revenue DESC'
        )
    conditions = [_REVENUE_FILTER]
    if month := _month(q):
        conditions.append(f"strftime('%Y-%m', order_date) = '{month}'")
    return f'SELECT ROUND(SUM(total), 2) FROM orders WHERE {" AND ".join(conditions)}'


def _average_order(q: str) -> str | None:
    if 'average order' not in q:
        return None
    return f'SELECT ROUND(AVG(total), 2) FROM orders WHERE {_REVENUE_FILTER}'


def _products(q: str) -> str | None:
    if 'most expensive' in q:
        return 'SELECT name FROM products ORDER BY price DESC LIMIT 1'
    if 'cheapest' in q:
        return 'SELECT name FROM products ORDER BY price ASC LIMIT 1'
    if 'best-selling' in q or 'best selling' in q or ('top' in q and 'product' in q):
        return (
            'SELECT p.name, SUM(i.quantity) AS units FROM order_items i JOIN products p ON p.id = i.product_id'
            f' GROUP BY p.id ORDER BY units DESC, p.name LIMIT {_top_n(q)}'
        )
    category = next((c for c in _CATEGORIES if c in q), None)
    if category and 'product' in q:
        return f"SELECT name FROM products WHERE category = '{category}' ORDER BY name"
    return None


def _customers(q: str) -> str | None:
    if 'spent the most' in q or 'biggest customer' in q or 'top customer' in q:
        return (
            'SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id'
            f' WHERE o.{_REVENUE_FILTER} GROUP BY c.id ORDER BY SUM(o.total) DESC LIMIT 1'
        )
    if 'customers' in q and ('signed up' in q or 'joined' in q) and (year := re.search(r'\b(20\d\d)\b', q)):
        return f"SELECT name FROM customers WHERE strftime('%Y', signup_date) = '{year.group(1)}' ORDER BY name"
    return None


def _order_status(q: str) -> str | None:
    match = re.search(r'\bord-(\d{4})\b', q)
    if match and 'status' in q:
        return f"SELECT status FROM orders WHERE id = 'ORD-{match.group(1)}'"
    return None


_RULES: tuple[Callable[[str], str | None], ...] = (
    _order_status,
    _customers_count,
    _orders_count,
    _average_order,
    _revenue,
    _products,
    _customers,
)


def question_to_sql(question: str) -> str | None:
    """The SQL of the first rule that recognises the question, or None when no rule does."""
    q = question.lower()
    for rule in _RULES:
        if (sql := rule(q)) is not None:
            return sql
    return None


def sql_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline model: refuse writes, else run the SQL a rule gives and report it with its first rows."""
    question = last_user_prompt(messages)
    if _WRITE_WORDS.search(question):
        return final_output(info, {'sql': '', 'summary': 'I only have read-only access, so I will not change data.'})
    sql = question_to_sql(question)
    if sql is None:
        return final_output(info, {'sql': '', 'summary': 'I do not know how to answer that from the shop database.'})
    results = tool_results(messages).get('run_sql')
    if not results and not retry_prompts(messages):
        return tool_call(('run_sql', {'query': sql}))
    if not results:
        return final_output(info, {'sql': sql, 'summary': 'The query failed.'})
    rows = results[-1]['rows']
    preview = '; '.join(', '.join(str(v) for v in row) for row in rows[:5])
    return final_output(info, {'sql': sql, 'summary': f'{len(rows)} row(s): {preview}'})
