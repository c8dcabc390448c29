"""Token usage and cost, summed over the model-request spans of a trace.

Pydantic AI sets `gen_ai.usage.*` and `operation.cost` (priced by genai-prices) on each model-request span; agent-run
spans repeat the sums under `gen_ai.aggregated_usage.*`, so only request spans are counted here.

An offline model (pydantic-ai's `FunctionModel` or `TestModel`) that reports under a priced model name, such as
`FunctionModel(policy, model_name='gpt-4o-mini')`, gets a real price for its (estimated) tokens. Such a cost is
what the run would have cost on that model, not money spent: a usage keeps the names it was priced as
(`offline_priced_as`), and every output that shows the cost labels it "offline model, priced as openai:gpt-4o-mini".

A real model that genai-prices has no price for gets no `operation.cost`: its requests add $0, so a usage counts them
(`unpriced_requests`, `unpriced_models`) and a cost gate over them is not checked (and fails) rather than passing on a
cost that left them out. Offline models are not counted: nothing was spent on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..names import OPERATION_ATTRIBUTE

__all__ = (
    'OFFLINE_PROVIDERS',
    'CaseUsage',
    'Usage',
    'is_model_request',
    'priced_as',
    'usage_attributes',
    'usage_of_span',
)

OFFLINE_PROVIDERS = frozenset({'function', 'test'})
"""The `gen_ai.provider.name` of pydantic-ai's offline models, `FunctionModel` and `TestModel`."""


@dataclass
class Usage:
    """Requests, tokens and cost in USD, the unit every total in evaltrace is made of."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    offline_priced_as: frozenset[str] = frozenset()
    """Models (`provider:model`) under whose price offline models' requests were counted (see the module doc)."""
    unpriced_requests: int = 0
    """Requests to real models that genai-prices has no price for: counted as $0 in `cost_usd`."""
    unpriced_models: frozenset[str] = frozenset()

    def add(self, other: Usage) -> None:
        """Add another usage into this one, in place."""
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.offline_priced_as |= other.offline_priced_as
        self.unpriced_requests += other.unpriced_requests
        self.unpriced_models |= other.unpriced_models

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            'requests': self.requests,
            'input_tokens': self.input_tokens,
            'output_tokens': self.output_tokens,
            'cost_usd': round(self.cost_usd, 10),
        }
        if self.offline_priced_as:
            data['offline_priced_as'] = sorted(self.offline_priced_as)
        if self.unpriced_requests:
            data['unpriced_requests'] = self.unpriced_requests
            data['unpriced_models'] = sorted(self.unpriced_models)
        if note := self.cost_note:
            data['cost_note'] = note  # derived, for readers of report.json (the HTML report), never read back
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        if not data:
            return cls()
        return cls(
            requests=int(data.get('requests', 0)),
            input_tokens=int(data.get('input_tokens', 0)),
            output_tokens=int(data.get('output_tokens', 0)),
            cost_usd=float(data.get('cost_usd', 0.0)),
            offline_priced_as=frozenset(str(m) for m in data.get('offline_priced_as') or ()),
            unpriced_requests=int(data.get('unpriced_requests', 0)),
            unpriced_models=frozenset(str(m) for m in data.get('unpriced_models') or ()),
        )

    @property
    def unpriced_note(self) -> str | None:
        """Why a cost gate over this usage cannot be checked, or None when every request was priced."""
        if not self.unpriced_requests:
            return None
        n = self.unpriced_requests
        models = ', '.join(sorted(self.unpriced_models))
        return f'{n} request{"" if n == 1 else "s"} counted as $0: genai-prices has no price for {models}'

    @property
    def cost_note(self) -> str:
        """What the cost leaves out or stands for ('' when nothing), as every output that shows the cost words it:
        offline models priced as real ones, and requests that got no price (`unpriced_note`)."""
        notes: list[str] = []
        if self.offline_priced_as:
            notes.append(f'offline model, priced as {", ".join(sorted(self.offline_priced_as))}')
        if (unpriced := self.unpriced_note) is not None:
            notes.append(unpriced)
        return '; '.join(notes)

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        out = cls()
        for u in usages:
            out.add(u)
        return out


def is_model_request(attributes: Mapping[str, Any]) -> bool:
    """Whether a span is one model request (not an agent run repeating the sums)."""
    if attributes.get(OPERATION_ATTRIBUTE) in ('invoke_agent', 'execute_tool'):
        return False
    return 'gen_ai.usage.input_tokens' in attributes or 'gen_ai.usage.output_tokens' in attributes


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@cache
def priced_as(model: str) -> str:
    """`provider:model` as genai-prices matches a bare model name (`gpt-4o-mini` -> `openai:gpt-4o-mini`)."""
    try:
        from genai_prices.data_snapshot import get_snapshot

        provider, _ = get_snapshot().find_provider_model(model, None, None, None)
    except Exception:  # an unknown name, or another genai-prices: the bare name still says what was priced
        return model
    return f'{provider.id}:{model}'


def _provider_and_model(attributes: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A model request's provider (`gen_ai.provider.name`, or the older `gen_ai.system`) and model (the response's,
    else the request's; None when neither names one)."""
    provider = attributes.get('gen_ai.provider.name', attributes.get('gen_ai.system'))
    model = attributes.get('gen_ai.response.model') or attributes.get('gen_ai.request.model')
    return provider, model if isinstance(model, str) and model else None


def _offline_priced_as(attributes: Mapping[str, Any], cost: float) -> frozenset[str]:
    provider, model = _provider_and_model(attributes)
    if cost <= 0 or provider not in OFFLINE_PROVIDERS or model is None:
        return frozenset()
    return frozenset({priced_as(model)})


def _unpriced_model(attributes: Mapping[str, Any], tokens: int) -> str | None:
    """The model of a real model's request that got no price (see the module doc), or None."""
    if 'operation.cost' in attributes or not tokens:
        return None
    provider, model = _provider_and_model(attributes)
    if provider in OFFLINE_PROVIDERS:
        return None
    return model or 'unnamed model'


def usage_of_span(attributes: Mapping[str, Any]) -> Usage | None:
    """The usage of one model-request span, or None when the span is not a model request."""
    if not is_model_request(attributes):
        return None
    cost = _number(attributes.get('operation.cost'))
    input_tokens = int(_number(attributes.get('gen_ai.usage.input_tokens')))
    output_tokens = int(_number(attributes.get('gen_ai.usage.output_tokens')))
    unpriced = _unpriced_model(attributes, input_tokens + output_tokens)
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        offline_priced_as=_offline_priced_as(attributes, cost),
        unpriced_requests=int(unpriced is not None),
        unpriced_models=frozenset(() if unpriced is None else (unpriced,)),
    )


@dataclass
class CaseUsage:
    """A case's usage, split into the task's share and the evaluators' (judge) share."""

    task: Usage = field(default_factory=Usage)
    judge: Usage = field(default_factory=Usage)
    replayed_cost_usd: float = 0.0
    """The part of the cost that was replayed from a cassette: reported, but not spent."""


def usage_attributes(case_usage: CaseUsage) -> dict[str, int | float]:
    """The attributes the case's root span carries: task, judge and total usage."""
    total = Usage.total([case_usage.task, case_usage.judge])
    attrs: dict[str, int | float] = {}
    for prefix, usage in (
        ('evaltrace.usage', total),
        ('evaltrace.task_usage', case_usage.task),
        ('evaltrace.judge_usage', case_usage.judge),
    ):
        attrs[f'{prefix}.requests'] = usage.requests
        attrs[f'{prefix}.input_tokens'] = usage.input_tokens
        attrs[f'{prefix}.output_tokens'] = usage.output_tokens
        attrs[f'{prefix}.cost_usd'] = usage.cost_usd
    return attrs
