"""The results evaltrace produces, as plain data: one `CaseResult` per case run, grouped into suites and a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .usage import Usage

__all__ = ('CaseResult', 'CaseStatus', 'EvalValue', 'GateResult')

CaseStatus = Literal['passed', 'failed', 'error', 'skipped']


@dataclass
class EvalValue:
    """One evaluator output: an assertion (bool), a score (number) or a label (str), with its reason."""

    value: Any
    reason: str | None = None
    evaluator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {'value': self.value, 'reason': self.reason, 'evaluator': self.evaluator}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalValue:
        return cls(value=data.get('value'), reason=data.get('reason'), evaluator=data.get('evaluator'))


@dataclass
class CaseResult:
    """The outcome of one case (one repeat of it, when the suite repeats cases)."""

    suite: str
    case: str
    nodeid: str
    status: CaseStatus
    repeat: int | None = None
    repeats: int = 1
    assertions: dict[str, EvalValue] = field(default_factory=dict[str, EvalValue])
    scores: dict[str, EvalValue] = field(default_factory=dict[str, EvalValue])
    labels: dict[str, EvalValue] = field(default_factory=dict[str, EvalValue])
    evaluator_failures: list[dict[str, str]] = field(default_factory=list[dict[str, str]])
    failures: list[str] = field(default_factory=list[str])
    error: dict[str, str] | None = None
    duration_s: float = 0.0
    task_duration_s: float | None = None
    trace_id: str | None = None
    span_id: str | None = None
    trace_url: str | None = None
    task_usage: Usage = field(default_factory=Usage)
    judge_usage: Usage = field(default_factory=Usage)
    inputs: Any = None
    expected_output: Any = None
    output: Any = None
    metadata: Any = None
    metrics: dict[str, float] = field(default_factory=dict[str, float])
    """Set by the task with `increment_eval_metric` (and from its spans), as pydantic-evals reports them."""
    attributes: dict[str, Any] = field(default_factory=dict[str, Any])
    """Set by the task with `set_eval_attribute`."""
    inputs_hash: str | None = None
    replayed: bool = False
    replayed_cost_usd: float = 0.0
    cassette: str | None = None
    """The cassette the case's model traffic was replayed from or recorded to (none when it ran live)."""
    recorded_at: str | None = None
    """When the replayed cassette was recorded (ISO 8601, UTC)."""
    xfailed: bool = False
    """A skipped case whose task called `pytest.xfail` (its item reports it as an expected failure; the reason its
    task gave is its one failure, as for `pytest.skip`)."""

    @property
    def usage(self) -> Usage:
        return Usage.total([self.task_usage, self.judge_usage])

    @property
    def case_key(self) -> str:
        """Identifies the case across repeats and runs: suite and case name."""
        return f'{self.suite}[{self.case}]'

    def to_dict(self) -> dict[str, Any]:
        return {
            'suite': self.suite,
            'case': self.case,
            'nodeid': self.nodeid,
            'status': self.status,
            'repeat': self.repeat,
            'repeats': self.repeats,
            'assertions': {k: v.to_dict() for k, v in self.assertions.items()},
            'scores': {k: v.to_dict() for k, v in self.scores.items()},
            'labels': {k: v.to_dict() for k, v in self.labels.items()},
            'evaluator_failures': self.evaluator_failures,
            'failures': self.failures,
            'error': self.error,
            'duration_s': round(self.duration_s, 6),
            'task_duration_s': None if self.task_duration_s is None else round(self.task_duration_s, 6),
            'trace_id': self.trace_id,
            'span_id': self.span_id,
            'trace_url': self.trace_url,
            'task_usage': self.task_usage.to_dict(),
            'judge_usage': self.judge_usage.to_dict(),
            'inputs': self.inputs,
            'expected_output': self.expected_output,
            'output': self.output,
            'metadata': self.metadata,
            'metrics': self.metrics,
            'attributes': self.attributes,
            'inputs_hash': self.inputs_hash,
            'replayed': self.replayed,
            'replayed_cost_usd': round(self.replayed_cost_usd, 10),
            'cassette': self.cassette,
            'recorded_at': self.recorded_at,
            'xfailed': self.xfailed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        def values(key: str) -> dict[str, EvalValue]:
            raw: dict[str, dict[str, Any]] = data.get(key) or {}
            return {k: EvalValue.from_dict(v) for k, v in raw.items()}

        return cls(
            suite=data['suite'],
            case=data['case'],
            nodeid=data.get('nodeid', ''),
            status=data['status'],
            repeat=data.get('repeat'),
            repeats=data.get('repeats', 1),
            assertions=values('assertions'),
            scores=values('scores'),
            labels=values('labels'),
            evaluator_failures=list(data.get('evaluator_failures') or []),
            failures=list(data.get('failures') or []),
            error=data.get('error'),
            duration_s=float(data.get('duration_s') or 0.0),
            task_duration_s=data.get('task_duration_s'),
            trace_id=data.get('trace_id'),
            span_id=data.get('span_id'),
            trace_url=data.get('trace_url'),
            task_usage=Usage.from_dict(data.get('task_usage')),
            judge_usage=Usage.from_dict(data.get('judge_usage')),
            inputs=data.get('inputs'),
            expected_output=data.get('expected_output'),
            output=data.get('output'),
            metadata=data.get('metadata'),
            metrics=dict(data.get('metrics') or {}),
            attributes=dict(data.get('attributes') or {}),
            inputs_hash=data.get('inputs_hash'),
            replayed=bool(data.get('replayed', False)),
            replayed_cost_usd=float(data.get('replayed_cost_usd') or 0.0),
            cassette=data.get('cassette'),
            recorded_at=data.get('recorded_at'),
            xfailed=bool(data.get('xfailed', False)),
        )


@dataclass
class GateResult:
    """One gate check: what was required, what was measured, and whether it held."""

    name: str
    scope: str
    threshold: Any
    actual: Any
    passed: bool
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'scope': self.scope,
            'threshold': self.threshold,
            'actual': self.actual,
            'passed': self.passed,
            'detail': self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(
            name=data['name'],
            scope=data['scope'],
            threshold=data.get('threshold'),
            actual=data.get('actual'),
            passed=bool(data['passed']),
            detail=data.get('detail'),
        )
