"""The "Connecting Logfire to Pydantic Evals" example, moved onto evaltrace.

The original configures Logfire, builds the dataset and calls `dataset.evaluate_sync(analyst_task)`. Here the
harness configures Logfire and runs the cases, so the only change is the `@evaltrace.suite(dataset)` line; the
agent comes from `agents.finance`, so its model follows `DEMO_AGENT_MODEL` (offline by default).
"""

from __future__ import annotations

from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import IsInstance, LLMJudge

import evaltrace
from agents.finance import agent

dataset = Dataset(
    name='financial_analyst',  # pydantic-evals 2.x requires a name; the seed predates that
    cases=[
        Case(
            name='pe_ratio_explanation',
            inputs='What does P/E ratio mean?',
            expected_output='Price-to-earnings ratio',
            metadata={'difficulty': 'easy', 'category': 'valuation'},
            evaluators=[
                LLMJudge(
                    rubric='Accurate, concise, suitable for finance professional',
                    include_input=True,
                ),
            ],
        ),
        Case(
            name='ebitda_explanation',
            inputs='What is EBITDA and why do analysts use it?',
            expected_output='Earnings before interest, taxes, depreciation and amortisation',
            metadata={'difficulty': 'easy', 'category': 'profitability'},
            evaluators=[LLMJudge(rubric='Accurate, concise, expands the acronym "earnings before interest"')],
        ),
        Case(
            name='free_cash_flow',
            inputs='How is free cash flow calculated?',
            expected_output='Operating cash flow minus capital expenditure',
            metadata={'difficulty': 'medium', 'category': 'cash flow'},
            evaluators=[
                LLMJudge(rubric='Accurate and concise', include_input=True, include_expected_output=True),
            ],
        ),
        Case(
            name='diversification',
            inputs='Why does diversification reduce portfolio risk?',
            metadata={'difficulty': 'medium', 'category': 'portfolio'},
            evaluators=[LLMJudge(rubric='Answers the question and mentions "correlated" returns', include_input=True)],
        ),
        Case(
            name='convertible_bond',
            inputs='What is a convertible bond?',
            expected_output='A bond the holder can convert into a set number of shares of the issuer',
            metadata={'difficulty': 'hard', 'category': 'fixed income'},
            evaluators=[LLMJudge(rubric='Accurate, concise, suitable for finance professional', include_input=True)],
        ),
    ],
    evaluators=[IsInstance(type_name='str')],
)


@evaltrace.suite(dataset, gate=evaltrace.Gate(min_pass_rate=0.6))
async def test_financial_analyst(question: str) -> str:
    result = await agent.run(question)
    return result.output
