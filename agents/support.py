"""Support triage agent: reads a customer message, looks up the order and the help articles, and triages it.

The offline model is a transparent rule-based policy (`triage_policy`): it calls `lookup_order` when the message
names an order id in the shop's `ORD-1234` form and `search_kb` always, then classifies the message with keyword
rules. It misses order numbers written any other way and mislabels messages that mix intents, as a keyword
classifier does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo

from agents._offline import final_output, last_user_prompt, tool_call, tool_results
from agents.db import connect_readonly, shop_db
from agents.kb import KnowledgeBase
from agents.models import ConfiguredModel, offline_model

__all__ = (
    'Category',
    'Priority',
    'SupportDeps',
    'TicketInput',
    'Triage',
    'assess_priority',
    'classify',
    'draft_reply',
    'find_order_id',
    'lookup_order',
    'relevant_sentences',
    'search_kb',
    'should_escalate',
    'triage_agent',
    'triage_policy',
)

Category = Literal['shipping', 'refund', 'billing', 'account', 'product_issue', 'cancellation', 'other']
Priority = Literal['low', 'normal', 'high', 'urgent']


class TicketInput(BaseModel):
    """A customer's support message."""

    message: str
    customer_email: str | None = None


class Triage(BaseModel):
    """How support should handle a message."""

    category: Category
    priority: Priority
    escalate: bool = Field(description='Whether a human specialist must take over.')
    reply_draft: str = Field(description='A reply to the customer, for an agent to review and send.')
    order_id: str | None = Field(default=None, description='The order the message is about, if one was found.')


@dataclass
class SupportDeps:
    """What the triage tools read: the shop database and the help articles."""

    db_path: Path = field(default_factory=shop_db)
    kb: KnowledgeBase = field(default_factory=KnowledgeBase)


def lookup_order(deps: SupportDeps, order_id: str) -> dict[str, Any] | None:
    """The order with `order_id` (status, dates, carrier, tracking, items, customer), or None."""
    conn = connect_readonly(deps.db_path)
    try:
        cursor = conn.cursor()
        row = cursor.execute(
            'SELECT o.id, o.status, o.order_date, o.total, o.carrier, o.tracking_number, o.shipped_date,'
            ' o.delivered_date, c.name, c.email, c.tier FROM orders o JOIN customers c ON c.id = o.customer_id'
            ' WHERE o.id = ?',
            (order_id.strip().upper(),),
        ).fetchone()
        if row is None:
            return None
        items = cursor.execute(
            'SELECT p.name, i.quantity, i.unit_price FROM order_items i JOIN products p ON p.id = i.product_id'
            ' WHERE i.order_id = ? ORDER BY p.name',
            (row[0],),
        ).fetchall()
    finally:
        conn.close()
    keys = ('order_id', 'status', 'order_date', 'total', 'carrier', 'tracking_number', 'shipped_date')
    keys += ('delivered_date', 'customer_name', 'customer_email', 'customer_tier')
    order: dict[str, Any] = dict(zip(keys, row, strict=True))
    order['items'] = [{'product': name, 'quantity': qty, 'unit_price': price} for name, qty, price in items]
    return order


def search_kb(deps: SupportDeps, query: str) -> list[dict[str, str]]:
    """The help articles that best match `query`."""
    return [{'slug': a.slug, 'title': a.title, 'body': a.body} for a in deps.kb.search(query)]


triage_agent = Agent(
    name='support_triage',
    deps_type=SupportDeps,
    output_type=Triage,
    instructions=(
        'You triage customer support messages for an online electronics shop. Look up the order when the message '
        'names one, search the help articles, then return the category, the priority, whether a human specialist '
        'must take over (legal threats, fraud, billing disputes, account ownership changes, orders that cannot be '
        'found), and a short, friendly reply draft grounded in the order and the articles.'
    ),
    capabilities=[ConfiguredModel(lambda: offline_model(triage_policy, 'triage'))],
)


@triage_agent.tool(name='lookup_order')
def _lookup_order_tool(ctx: RunContext[SupportDeps], order_id: str) -> dict[str, Any] | str:
    """Look up an order by its id (for example ORD-1003).

    Args:
        ctx: The run context.
        order_id: The order id.
    """
    return lookup_order(ctx.deps, order_id) or f'No order found with id {order_id}.'


@triage_agent.tool(name='search_kb')
def _search_kb_tool(ctx: RunContext[SupportDeps], query: str) -> list[dict[str, str]]:
    """Search the help articles.

    Args:
        ctx: The run context.
        query: Words describing the customer's problem.
    """
    return search_kb(ctx.deps, query)


# --- The offline policy: pure rules, unit-tested in tests/agents/test_support.py -------------------------------

_ORDER_ID = re.compile(r'\bORD-?(\d{4})\b', re.IGNORECASE)

# First match wins, so the more specific intents come first.
_CATEGORY_RULES: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ('cancellation', ('cancel',)),
    ('account', ('password', 'log in', 'login', 'sign in', 'account', 'email address')),
    ('billing', ('charged', 'charge', 'invoice', 'billing', 'payment', 'receipt', 'fraud', 'my card')),
    ('product_issue', ('broken', 'damaged', 'defective', 'stopped working', 'faulty', 'cracked', "doesn't work")),
    ('refund', ('refund', 'return', 'money back', 'send it back')),
    ('shipping', ('where is', 'tracking', 'deliver', 'arrived', 'ship', 'package', 'parcel', 'late')),
)
_URGENT_WORDS = ('lawyer', 'legal', 'chargeback', 'fraud', 'scam', 'unacceptable', 'third time', 'bank')
_HIGH_WORDS = ('asap', 'urgent', 'immediately', 'today')
_QUESTION_OPENERS = ('how do i', 'how can i', 'can i', 'do you', 'what is', 'is it possible', 'will i')
# What the policy adds to the customer's words when searching the help articles, as a model writing a query would.
_SEARCH_TERMS: dict[Category, str] = {
    'shipping': 'shipping delivery tracking',
    'refund': 'returns refunds',
    'billing': 'billing charge invoice',
    'product_issue': 'damaged defective',
    'cancellation': 'cancel',
    'account': 'password account',
    'other': '',
}
_ESCALATION_TEAMS: dict[Category, str] = {'billing': 'our billing team', 'account': 'our account team'}
_SENTENCE_END = re.compile(r'(?<=[.!?])\s+')
_WORD = re.compile(r'[a-z]{4,}')


def find_order_id(text: str) -> str | None:
    """The order id the message names in the shop's `ORD-1234` form, normalised; None if there is none."""
    match = _ORDER_ID.search(text)
    return f'ORD-{match.group(1)}' if match else None


def classify(text: str) -> Category:
    """The category whose keywords appear first in the rule order; `other` when none do."""
    lowered = text.lower()
    for category, words in _CATEGORY_RULES:
        if any(word in lowered for word in words):
            return category
    return 'other'


def assess_priority(text: str, category: Category, order: dict[str, Any] | None) -> Priority:
    """Urgent on legal or fraud words; high for delays, damage, big orders or explicit urgency; low otherwise for
    general questions and messages that need no action."""
    lowered = text.lower()
    if any(word in lowered for word in _URGENT_WORDS):
        return 'urgent'
    if category == 'product_issue' or any(word in lowered for word in _HIGH_WORDS):
        return 'high'
    if order is not None and (order['status'] == 'delayed' or order['total'] >= 500):
        return 'high'
    if category == 'other' or (order is None and lowered.strip().startswith(_QUESTION_OPENERS)):
        return 'low'
    return 'normal'


def should_escalate(
    text: str, category: Category, priority: Priority, order_id: str | None, order: dict[str, Any] | None
) -> bool:
    """Escalate urgent messages, billing disputes, account ownership changes and orders that cannot be found."""
    lowered = text.lower()
    if priority == 'urgent':
        return True
    if category == 'billing' and any(word in lowered for word in ('twice', 'double', 'dispute')):
        return True
    if category == 'account' and 'no longer have access' in lowered:
        return True
    return order_id is not None and order is None


def _stems(text: str) -> set[str]:
    # Five-letter prefixes stand in for stemming: refund/refunds, charge/charged.
    return {word[:5] for word in _WORD.findall(text.lower())}


def relevant_sentences(message: str, body: str) -> list[str]:
    """The article's first sentence, plus the later sentence sharing most words with the message, if any does."""
    first, *rest = _SENTENCE_END.split(body.strip())
    wanted = _stems(message)
    best = max(rest, key=lambda sentence: len(wanted & _stems(sentence)), default=None)
    return [first, best] if best is not None and wanted & _stems(best) else [first]


def draft_reply(
    message: str,
    category: Category,
    priority: Priority,
    order_id: str | None,
    order: dict[str, Any] | None,
    articles: Sequence[dict[str, str]],
    escalate: bool,
) -> str:
    """A short reply grounded in the order record and the best-matching help article."""
    name = order['customer_name'].split()[0] if order else 'there'
    lines = [f'Hi {name}, thanks for getting in touch.']
    if category == 'product_issue' or priority in ('high', 'urgent'):
        lines.append("I'm sorry for the trouble this has caused.")
    if order is not None:
        status = order['status']
        sentence = f'Your order {order["order_id"]} is currently {status}'
        if order['carrier'] and status in ('shipped', 'delayed'):
            sentence += f'; it shipped with {order["carrier"]} on {order["shipped_date"]}'
            sentence += f' and the tracking number is {order["tracking_number"]}'
        elif order['delivered_date']:
            sentence += f'; it was delivered on {order["delivered_date"]}'
        lines.append(sentence + '.')
    elif order_id is not None:
        lines.append(f'I could not find an order with the number {order_id}.')
    if articles:
        article = articles[0]
        lines.append(
            f'From our help article "{article["title"]}": ' + ' '.join(relevant_sentences(message, article['body']))
        )
    if escalate:
        team = _ESCALATION_TEAMS.get(category, 'a specialist colleague')
        lines.append(f'I have passed your message to {team}, who will contact you within one business day.')
    lines.append('Best regards, the Support team')
    return '\n'.join(lines)


def triage_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline model: first call the tools, then triage with the rules above using what they returned."""
    text = last_user_prompt(messages)
    order_id = find_order_id(text)
    results = tool_results(messages)
    if not results:
        query = f'{_SEARCH_TERMS[classify(text)]} {text}'.strip()
        calls: list[tuple[str, dict[str, Any]]] = [('search_kb', {'query': query})]
        if order_id is not None:
            calls.insert(0, ('lookup_order', {'order_id': order_id}))
        return tool_call(*calls)
    order_result = results.get('lookup_order', [None])[-1]
    order = cast(dict[str, Any], order_result) if isinstance(order_result, dict) else None
    articles: list[dict[str, str]] = results.get('search_kb', [[]])[-1]
    category = classify(text)
    priority = assess_priority(text, category, order)
    escalate = should_escalate(text, category, priority, order_id, order)
    return final_output(
        info,
        {
            'category': category,
            'priority': priority,
            'escalate': escalate,
            'reply_draft': draft_reply(text, category, priority, order_id, order, articles, escalate),
            'order_id': order['order_id'] if order else None,
        },
    )
