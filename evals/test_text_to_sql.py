"""Text to SQL, judged by execution: the agent's query must return the rows of the expected query."""

from __future__ import annotations

import evaltrace
from agents.schemas import SQL_EVALUATORS
from agents.text_to_sql import SqlAnswer, SqlDeps, SqlQuestion, sql_agent
from evaltrace import Gate


@evaltrace.suite(
    'datasets/text_to_sql.yaml', evaluator_types=SQL_EVALUATORS, max_concurrency=8, gate=Gate(min_pass_rate=0.75)
)
async def test_text_to_sql(inputs: SqlQuestion, sql_deps: SqlDeps) -> SqlAnswer:
    result = await sql_agent.run(inputs.question, deps=sql_deps)
    return result.output
