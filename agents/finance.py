"""The financial analyst agent of the Logfire + Pydantic Evals example, with an offline glossary policy.

Offline (`finance_policy`) it answers from a small glossary of finance terms and says so when a term is not in it.
"""

from __future__ import annotations

import re

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo

from agents._offline import final_output, last_user_prompt
from agents.models import ConfiguredModel, offline_model

__all__ = ('GLOSSARY', 'agent', 'define', 'finance_policy')

GLOSSARY: dict[str, str] = {
    r'p/e|price[- ]to[- ]earnings': (
        'Price-to-earnings ratio: the share price divided by earnings per share. It shows how much investors pay '
        'for one unit of profit; a high P/E signals expected growth or overvaluation.'
    ),
    r'ebitda': (
        'EBITDA: earnings before interest, taxes, depreciation and amortisation, a proxy for operating cash '
        'profit that ignores capital structure and accounting for long-lived assets.'
    ),
    r'free cash flow|fcf': (
        'Free cash flow: operating cash flow minus capital expenditure, the cash a business can return to '
        'investors or reinvest.'
    ),
    r'diversif': (
        'Diversification: spreading investments across assets whose returns are not perfectly correlated, which '
        'reduces portfolio risk without necessarily reducing expected return.'
    ),
    r'dividend yield': 'Dividend yield: annual dividends per share divided by the share price, as a percentage.',
    r'working capital': 'Working capital: current assets minus current liabilities, a measure of short-term liquidity.',
}


def define(question: str) -> str:
    """The glossary answer for the first term the question mentions, or an admission that it is not covered."""
    for pattern, answer in GLOSSARY.items():
        if re.search(pattern, question, re.IGNORECASE):
            return answer
    return "I don't have a reliable definition for that term in my glossary."


def finance_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline model: answer from the glossary."""
    return final_output(info, define(last_user_prompt(messages)))


agent = Agent(
    name='financial_analyst',
    system_prompt='You are a financial analyst.',
    capabilities=[ConfiguredModel(lambda: offline_model(finance_policy, 'finance'))],
)
