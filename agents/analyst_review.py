"""A two-agent pipeline: an analyst writes a data brief from shop metrics, a reviewer checks it against the data.

`analyse()` runs the analyst, then the reviewer; when the reviewer finds issues the analyst revises once with the
issues in its prompt and the reviewer checks again, so one question costs two to four agent runs.

Offline, the analyst (`analyst_policy`) maps question keywords to metrics and, in a first draft, discusses only the
three largest figures; the reviewer (`reviewer_policy`) recomputes every figure with the same tool and asks for any
figure missing from the text. Neither understands quarters, years or growth, so such questions get all-time figures.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo

from agents._offline import final_output, last_user_prompt, tool_call, tool_results
from agents.db import execute_readonly, shop_db
from agents.models import ConfiguredModel, offline_model

__all__ = (
    'AnalystDeps',
    'Brief',
    'BriefRequest',
    'Metric',
    'Review',
    'ReviewedBrief',
    'analyse',
    'analyst_agent',
    'analyst_policy',
    'choose_metrics',
    'compute_metric',
    'format_figure',
    'review_brief',
    'reviewer_agent',
    'reviewer_policy',
)

Metric = Literal[
    'revenue_total',
    'order_count',
    'average_order_value',
    'revenue_by_category',
    'revenue_by_country',
    'orders_by_status',
    'top_customer',
]
_MONTH_FILTERABLE = ('revenue_total', 'order_count', 'average_order_value')
_REVENUE = "o.status NOT IN ('cancelled', 'returned')"
_METRIC_SQL: dict[Metric, str] = {
    'revenue_total': f"SELECT 'revenue_total', ROUND(SUM(o.total), 2) FROM orders o WHERE {_REVENUE}",
    'order_count': "SELECT 'order_count', COUNT(*) FROM orders o WHERE 1 = 1",
    'average_order_value': f"SELECT 'average_order_value', ROUND(AVG(o.total), 2) FROM orders o WHERE {_REVENUE}",
    'revenue_by_category': (
        "SELECT 'revenue:' || p.category, ROUND(SUM(i.quantity * i.unit_price), 2) FROM order_items i"
        f' JOIN products p ON p.id = i.product_id JOIN orders o ON o.id = i.order_id WHERE {_REVENUE}'
        ' GROUP BY p.category'
    ),
    'revenue_by_country': (
        "SELECT 'revenue:' || c.country, ROUND(SUM(o.total), 2) FROM orders o"
        f' JOIN customers c ON c.id = o.customer_id WHERE {_REVENUE} GROUP BY c.country'
    ),
    'orders_by_status': "SELECT 'orders:' || o.status, COUNT(*) FROM orders o GROUP BY o.status",
    'top_customer': (
        "SELECT 'spend:' || c.name, ROUND(SUM(o.total), 2) AS spend FROM orders o"
        f' JOIN customers c ON c.id = o.customer_id WHERE {_REVENUE} GROUP BY c.id ORDER BY spend DESC LIMIT 1'
    ),
}


class BriefRequest(BaseModel):
    """A business question for the analyst."""

    question: str


class Brief(BaseModel):
    """The analyst's answer: a headline, the figures it rests on, and the text."""

    headline: str
    period: str | None = Field(default=None, description="The month the figures cover as 'YYYY-MM', or None.")
    metrics: list[Metric] = Field(default_factory=list[Metric], description='The metrics the figures come from.')
    figures: dict[str, float] = Field(default_factory=dict[str, float])
    body: str


class Review(BaseModel):
    """The reviewer's verdict on a brief."""

    approved: bool
    issues: list[str] = Field(default_factory=list[str])


class ReviewedBrief(BaseModel):
    """The pipeline's result: the last brief, its review, and how many drafts it took."""

    brief: Brief
    review: Review
    drafts: int


@dataclass
class AnalystDeps:
    """The database both agents read metrics from."""

    db_path: Path = field(default_factory=shop_db)


def compute_metric(deps: AnalystDeps, metric: Metric, month: str | None = None) -> dict[str, float]:
    """The figures of one metric, optionally for one month ('YYYY-MM'), keyed like `revenue:furniture`."""
    if metric not in _METRIC_SQL:
        raise ValueError(f'unknown metric {metric!r}; expected one of {", ".join(_METRIC_SQL)}')
    sql = _METRIC_SQL[metric]
    if month is not None:
        if metric not in _MONTH_FILTERABLE or not re.fullmatch(r'\d{4}-\d{2}', month):
            raise ValueError(f'metric {metric!r} cannot be filtered by month {month!r}')
        sql += f" AND strftime('%Y-%m', o.order_date) = '{month}'"
    rows = execute_readonly(deps.db_path, sql).rows
    return {str(name): float(value or 0) for name, value in rows}


def _metric_tool(ctx: RunContext[AnalystDeps], metric: Metric, month: str | None = None) -> dict[str, float]:
    """Compute a shop metric from the orders database.

    Args:
        ctx: The run context.
        metric: Which metric to compute.
        month: Restrict to one month, as 'YYYY-MM' (only revenue_total, order_count and average_order_value).
    """
    return compute_metric(ctx.deps, metric, month)


analyst_agent = Agent(
    name='analyst',
    deps_type=AnalystDeps,
    output_type=Brief,
    instructions=(
        'You are a data analyst for an online shop. Answer the business question with a short brief: compute the '
        'metrics you need with `get_metric`, put every figure you use in `figures` (keyed as the tool returns them) '
        'and discuss each one in the body. If reviewer issues are listed, fix all of them.'
    ),
    capabilities=[ConfiguredModel(lambda: offline_model(analyst_policy, 'analyst'))],
)
analyst_agent.tool(name='get_metric')(_metric_tool)

reviewer_agent = Agent(
    name='reviewer',
    deps_type=AnalystDeps,
    output_type=Review,
    instructions=(
        'You review a data brief before it goes to management. Recompute its figures with `get_metric`, list every '
        'figure that is wrong or not discussed in the body, and approve only a brief with no issues.'
    ),
    capabilities=[ConfiguredModel(lambda: offline_model(reviewer_policy, 'reviewer'))],
)
reviewer_agent.tool(name='get_metric')(_metric_tool)


async def analyse(question: str, deps: AnalystDeps, *, max_drafts: int = 2) -> ReviewedBrief:
    """Run the analyst and the reviewer, with revisions, until the brief is approved or `max_drafts` is reached."""
    prompt = question
    drafts = 0
    while True:
        drafts += 1
        brief = (await analyst_agent.run(prompt, deps=deps)).output
        review_prompt = f'Question: {question}\n\nBrief:\n{brief.model_dump_json()}'
        review = (await reviewer_agent.run(review_prompt, deps=deps)).output
        if review.approved or drafts >= max_drafts:
            return ReviewedBrief(brief=brief, review=review, drafts=drafts)
        prompt = question + '\n\nReviewer issues to fix:\n' + '\n'.join(f'- {issue}' for issue in review.issues)


# --- The offline policies: pure rules, unit-tested in tests/agents/test_analyst_review.py ------------------------

_MONTH_NAMES = tuple(name.lower() for name in calendar.month_name[1:])


def choose_metrics(question: str) -> tuple[list[Metric], str | None]:
    """The metrics a question asks for (by keywords) and the month it names, if any."""
    q = question.lower().split('reviewer issues to fix:')[0]
    month = next((f'2024-{n:02d}' for n, name in enumerate(_MONTH_NAMES, start=1) if name in q), None)
    metrics: list[Metric] = []
    if 'revenue' in q or 'sales' in q:
        if 'categor' in q:
            metrics.append('revenue_by_category')
        elif 'countr' in q or 'market' in q:
            metrics.append('revenue_by_country')
        else:
            metrics.append('revenue_total')
    if 'status' in q or 'fulfil' in q or 'cancel' in q or 'return' in q:
        metrics.append('orders_by_status')
    if 'customer' in q and any(word in q for word in ('top', 'best', 'most', 'biggest')):
        metrics.append('top_customer')
    if 'average' in q or 'basket' in q:
        metrics.append('average_order_value')
    if 'how many orders' in q or 'order volume' in q or 'overview' in q:
        metrics.append('order_count')
    if 'overview' in q and 'revenue_total' not in metrics:
        metrics.insert(0, 'revenue_total')
    if month is not None:
        metrics = [m for m in metrics if m in _MONTH_FILTERABLE]
    return metrics, month


def format_figure(name: str, value: float) -> str:
    """How a figure is written in a brief: money with two decimals, counts as integers."""
    label = name.split(':', 1)[-1].replace('_', ' ')
    if name.startswith('orders:') or name == 'order_count':
        return f'{label}: {int(value)}'
    return f'{label}: {value:,.2f}'


def analyst_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline analyst: compute the chosen metrics, then write the brief (all figures in the text only on revision)."""
    prompt = last_user_prompt(messages)
    metrics, month = choose_metrics(prompt)
    results = tool_results(messages).get('get_metric')
    if metrics and not results:
        calls = [('get_metric', {'metric': m, 'month': month if m in _MONTH_FILTERABLE else None}) for m in metrics]
        return tool_call(*calls)
    figures: dict[str, float] = {}
    for result in results or []:
        figures.update(result)
    if not figures:
        empty: dict[str, Any] = {'headline': 'No data available', 'figures': {}, 'body': 'No metric answers this.'}
        return final_output(info, empty)
    ranked = sorted(figures.items(), key=lambda item: -item[1])
    revising = 'reviewer issues to fix:' in prompt.lower()
    shown = ranked if revising else ranked[:3]
    body = 'Key figures' + (f' for {month}' if month else '') + ': ' + '; '.join(format_figure(*f) for f in shown)
    if len(shown) < len(ranked):
        body += f'; and {len(ranked) - len(shown)} smaller figure(s).'
    else:
        body += '.'
    top_name, top_value = ranked[0]
    headline = f'{format_figure(top_name, top_value)} leads' if len(ranked) > 1 else format_figure(top_name, top_value)
    brief = {'headline': headline, 'period': month, 'metrics': metrics, 'figures': figures, 'body': body}
    return final_output(info, brief)


def review_brief(brief: Brief, recomputed: dict[str, float]) -> Review:
    """Check a brief's figures against recomputed ones and that the body discusses each figure."""
    issues: list[str] = []
    if not brief.figures:
        issues.append('The brief has no figures to support its headline.')
    for name, value in brief.figures.items():
        actual = recomputed.get(name)
        if actual is None:
            issues.append(f'Figure {name!r} does not come from the metrics the brief names.')
        elif abs(actual - value) > 0.01:
            issues.append(f'Figure {name!r} is {value} but the data says {actual}.')
        elif format_figure(name, value) not in brief.body:
            issues.append(f'Figure {name!r} is not discussed in the body.')
    return Review(approved=not issues, issues=issues)


_BRIEF_JSON = re.compile(r'Brief:\s*(\{.*\})\s*$', re.DOTALL)


def reviewer_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline reviewer: recompute each metric the brief names, then report the issues `review_brief` finds."""
    match = _BRIEF_JSON.search(last_user_prompt(messages))
    if match is None:
        return final_output(info, {'approved': False, 'issues': ['No brief found in the request.']})
    brief = Brief.model_validate_json(match.group(1))
    results = tool_results(messages).get('get_metric')
    known = set(get_args(Metric))
    metrics = [m for m in brief.metrics if m in known]
    if metrics and not results:
        month = brief.period
        calls = [('get_metric', {'metric': m, 'month': month if m in _MONTH_FILTERABLE else None}) for m in metrics]
        return tool_call(*calls)
    recomputed: dict[str, float] = {}
    for result in results or []:
        recomputed.update(result)
    review: dict[str, Any] = review_brief(brief, recomputed).model_dump()
    return final_output(info, review)
