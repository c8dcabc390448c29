"""Aggregate statistics of a set of case results, and the gates that judge them (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..results.case import CaseResult, CaseStatus, GateResult
from ..results.usage import Usage

__all__ = (
    'Gate',
    'LogicalCase',
    'Stats',
    'analysis_values',
    'at_least',
    'at_most',
    'compute_stats',
    'evaluate_analysis_gate',
    'evaluate_gate',
    'gate_from_mapping',
    'is_whole_number',
    'logical_cases',
    'wilson_lower_bound',
)


@dataclass(frozen=True)
class Gate:
    """Aggregate thresholds for a suite (in `evaltrace.suite(gate=...)`) or a session (`[tool.evaltrace.gate]`).

    Under a gate, failing cases are listed but only a failed gate fails the session. Every field is optional; rates
    are fractions between 0 and 1.
    """

    min_pass_rate: float | None = None
    """Minimum fraction of cases that pass (a repeated case counts once, by the k-of-n rule)."""
    min_assertion_pass_rate: float | None = None
    """Minimum fraction of all assertion results that are True."""
    min_evaluator_pass_rate: Mapping[str, float] = field(default_factory=dict[str, float])
    """Minimum assertion pass rate per assertion name."""
    min_score_avg: Mapping[str, float] = field(default_factory=dict[str, float])
    """Minimum average per named score."""
    min_metric_avg: Mapping[str, float] = field(default_factory=dict[str, float])
    """Minimum average per named task metric (`increment_eval_metric`, and pydantic-ai's `requests`, tokens...)."""
    max_metric_avg: Mapping[str, float] = field(default_factory=dict[str, float])
    """Maximum average per named task metric."""
    min_analysis: Mapping[str, float] = field(default_factory=dict[str, float])
    """Minimum value of a report evaluator's analysis: `TITLE` for a scalar, `TITLE.accuracy`,
    `TITLE.precision[CLASS]` or `TITLE.recall[CLASS]` for a confusion matrix, `TITLE.auc[CURVE]` for a
    precision-recall analysis (see `analysis_values`)."""
    max_errors: int | None = None
    """Maximum number of cases that errored: a case with repeats counts once, and only when it fails its k-of-n
    (a run that errored in a case that passes k-of-n is forgiven, as its pass rate forgives it)."""
    max_cost_usd: float | None = None
    """Maximum total cost (task and judge) in USD."""
    max_cost_per_case_usd: float | None = None
    """Maximum cost of any single case in USD."""
    max_total_tokens: int | None = None
    """Maximum total tokens (input and output, task and judge)."""
    max_p95_duration_s: float | None = None
    """Maximum 95th percentile of case durations, in seconds."""
    min_pass_rate_lower_bound: float | None = None
    """Minimum Wilson 95% lower bound of the case pass rate, so a small sample cannot pass by luck."""

    # Regression gates: checked against the baseline (the `baseline` setting) when that file exists. Only cases
    # present in both runs with the same inputs are compared; see `report/baseline.py`.
    no_assertion_regressions: bool = False
    """When true, no assertion that passed in the baseline may fail (or be lost to an error) now."""
    max_score_drop: float | None = None
    """Maximum drop of any average score against the baseline, in score units (0.05 = five hundredths)."""
    max_cost_increase_pct: float | None = None
    """Maximum growth of the cost against the baseline, in percent (20 = 20%)."""

    def problem(self) -> str | None:
        """What is wrong with a threshold (its key named), or None when every one is usable.

        Not checked at construction: a `Gate(...)` in `@evaltrace.suite(...)` is built while its module is
        imported, where an exception would fail every suite of the module. The suite's collection checks it instead.
        """
        for f in fields(self):
            try:
                _check_gate_value(f.name, getattr(self, f.name))
            except ValueError as e:
                return str(e)
        return None

    def is_empty(self) -> bool:
        return all(_unset(getattr(self, f.name)) for f in fields(self))

    @property
    def has_regression_gates(self) -> bool:
        """Whether this gate checks anything against a baseline."""
        return (
            self.no_assertion_regressions or self.max_score_drop is not None or self.max_cost_increase_pct is not None
        )


def _unset(value: Any) -> bool:
    # `is False` and not `== False`: `max_errors = 0` is a real threshold.
    return value is None or value is False or (isinstance(value, Mapping) and not value)


def gate_from_mapping(data: Mapping[str, Any]) -> Gate:
    """Build a Gate from a TOML/JSON table, rejecting unknown keys."""
    known = {f.name for f in fields(Gate)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f'unknown gate key(s) {", ".join(unknown)}; known: {", ".join(sorted(known))}')
    gate = Gate(**dict(data))
    problem = gate.problem()
    if problem is not None:
        raise ValueError(problem)
    return gate


_RATE_KEYS = ('min_pass_rate', 'min_assertion_pass_rate', 'min_pass_rate_lower_bound')
_COUNT_KEYS = ('max_errors', 'max_total_tokens')
_MAPPING_KEYS = ('min_evaluator_pass_rate', 'min_score_avg', 'min_metric_avg', 'max_metric_avg', 'min_analysis')


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_whole_number(value: Any) -> bool:
    """Whether a count given in TOML or Python is a whole number: an int, not a bool (True is 1 to `int`), and not a
    float (2.7 would be cut to 2). The one check of every count: gates, a suite's settings, the settings' parsers."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_gate_value(key: str, value: Any) -> None:
    """Reject a gate value of the wrong type or range with a message naming the key."""
    if value is None:
        return
    if key == 'no_assertion_regressions':
        if not isinstance(value, bool):
            raise ValueError(f'{key} must be true or false, got {value!r}')
    elif key in _MAPPING_KEYS:
        if not isinstance(value, Mapping):
            raise ValueError(f'{key} must be a table of name = number, got {value!r}')
        items: Mapping[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        for name, threshold in items.items():
            if not _is_number(threshold):
                raise ValueError(f'{key}[{name}] must be a number, got {threshold!r}')
    elif key in _COUNT_KEYS and not is_whole_number(value):
        # A count of cases or tokens: `max_errors = 1.5` would gate as 1, silently; `true` would be 1.
        raise ValueError(f'{key} must be a whole number, got {value!r}')
    elif not _is_number(value):
        raise ValueError(f'{key} must be a number, got {value!r}')
    elif value < 0:
        raise ValueError(f'{key} must be >= 0, got {value!r}')
    elif key in _RATE_KEYS and value > 1:
        raise ValueError(f'{key} is a fraction between 0 and 1, got {value!r}')


def wilson_lower_bound(successes: int, n: int, z: float = 1.959963984540054) -> float:
    """The lower bound of the Wilson score interval (95% by default) of a pass rate."""
    if n == 0:
        return 0.0
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


@dataclass
class LogicalCase:
    """A case with its repeats folded: it passes when at least k of its n runs pass."""

    key: str
    runs: list[CaseResult]
    k: int

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def n_passed(self) -> int:
        return sum(r.status == 'passed' for r in self.runs)

    @property
    def passed(self) -> bool:
        return self.n_passed >= min(self.k, self.n)

    @property
    def flaky(self) -> bool:
        return 0 < self.n_passed < self.n

    @property
    def status(self) -> CaseStatus:
        """The case's one status (the baseline's, and what `max_errors` counts): passed by its k-of-n; else an
        error when any run errored, else failed."""
        if self.passed:
            return 'passed'
        return 'error' if any(r.status == 'error' for r in self.runs) else 'failed'


def logical_cases(cases: Iterable[CaseResult], pass_k: Mapping[str, int] | None = None) -> list[LogicalCase]:
    """Fold repeats into logical cases. `pass_k` maps a suite to its k; by default every run must pass."""
    groups: dict[str, list[CaseResult]] = {}
    for c in cases:
        if c.status != 'skipped':
            groups.setdefault(c.case_key, []).append(c)
    out: list[LogicalCase] = []
    for key, runs in groups.items():
        k = (pass_k or {}).get(runs[0].suite) or len(runs)
        out.append(LogicalCase(key, runs, k))
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


@dataclass
class Stats:
    """Aggregates over a set of case results (a suite, or the whole session)."""

    cases: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    logical_cases: int = 0
    logical_passed: int = 0
    errored_cases: int = 0
    """Logical cases that failed their k-of-n with at least one run in error: what `max_errors` counts."""
    flaky: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    pass_rate: float | None = None
    pass_rate_lower_bound: float | None = None
    assertion_pass_rate: float | None = None
    evaluator_pass_rates: dict[str, float] = field(default_factory=dict[str, float])
    score_averages: dict[str, float] = field(default_factory=dict[str, float])
    metric_averages: dict[str, float] = field(default_factory=dict[str, float])
    task_usage: Usage = field(default_factory=Usage)
    judge_usage: Usage = field(default_factory=Usage)
    max_case_cost_usd: float = 0.0
    p95_duration_s: float = 0.0
    slowest: dict[str, Any] | None = None
    replayed_cost_usd: float = 0.0

    @property
    def usage(self) -> Usage:
        return Usage.total([self.task_usage, self.judge_usage])

    def to_dict(self) -> dict[str, Any]:
        return {
            'cases': self.cases,
            'passed': self.passed,
            'failed': self.failed,
            'error': self.error,
            'skipped': self.skipped,
            'logical_cases': self.logical_cases,
            'logical_passed': self.logical_passed,
            'errored_cases': self.errored_cases,
            'flaky': self.flaky,
            'pass_rate': self.pass_rate,
            'pass_rate_lower_bound': self.pass_rate_lower_bound,
            'assertion_pass_rate': self.assertion_pass_rate,
            'evaluator_pass_rates': self.evaluator_pass_rates,
            'score_averages': self.score_averages,
            'metric_averages': self.metric_averages,
            'task_usage': self.task_usage.to_dict(),
            'judge_usage': self.judge_usage.to_dict(),
            'usage': self.usage.to_dict(),
            'total_tokens': self.usage.total_tokens,
            'max_case_cost_usd': round(self.max_case_cost_usd, 10),
            'p95_duration_s': round(self.p95_duration_s, 6),
            'slowest': self.slowest,
            'replayed_cost_usd': round(self.replayed_cost_usd, 10),
            'spent_cost_usd': round(self.usage.cost_usd - self.replayed_cost_usd, 10),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stats:
        """The statistics as `to_dict` wrote them (its derived totals are computed again, not read)."""
        return cls(
            cases=int(data.get('cases', 0)),
            passed=int(data.get('passed', 0)),
            failed=int(data.get('failed', 0)),
            error=int(data.get('error', 0)),
            skipped=int(data.get('skipped', 0)),
            logical_cases=int(data.get('logical_cases', 0)),
            logical_passed=int(data.get('logical_passed', 0)),
            errored_cases=int(data.get('errored_cases', data.get('error', 0))),
            flaky=list(data.get('flaky') or []),
            pass_rate=data.get('pass_rate'),
            pass_rate_lower_bound=data.get('pass_rate_lower_bound'),
            assertion_pass_rate=data.get('assertion_pass_rate'),
            evaluator_pass_rates=dict(data.get('evaluator_pass_rates') or {}),
            score_averages=dict(data.get('score_averages') or {}),
            metric_averages=dict(data.get('metric_averages') or {}),
            task_usage=Usage.from_dict(data.get('task_usage')),
            judge_usage=Usage.from_dict(data.get('judge_usage')),
            max_case_cost_usd=float(data.get('max_case_cost_usd') or 0.0),
            p95_duration_s=float(data.get('p95_duration_s') or 0.0),
            slowest=data.get('slowest'),
            replayed_cost_usd=float(data.get('replayed_cost_usd') or 0.0),
        )


def compute_stats(cases: Sequence[CaseResult], pass_k: Mapping[str, int] | None = None) -> Stats:
    """Aggregate a set of case results."""
    s = Stats(cases=len(cases))
    assertion_totals: dict[str, list[int]] = {}
    score_values: dict[str, list[float]] = {}
    metric_values: dict[str, list[float]] = {}
    durations: list[float] = []
    for c in cases:
        if c.status == 'passed':
            s.passed += 1
        elif c.status == 'failed':
            s.failed += 1
        elif c.status == 'error':
            s.error += 1
        else:
            s.skipped += 1
            continue
        for name, ev in c.assertions.items():
            t = assertion_totals.setdefault(name, [0, 0])
            t[0] += bool(ev.value)
            t[1] += 1
        for name, ev in c.scores.items():
            if isinstance(ev.value, int | float) and not isinstance(ev.value, bool):
                score_values.setdefault(name, []).append(float(ev.value))
        for name, value in c.metrics.items():
            metric_values.setdefault(name, []).append(float(value))
        s.task_usage.add(c.task_usage)
        s.judge_usage.add(c.judge_usage)
        s.max_case_cost_usd = max(s.max_case_cost_usd, c.usage.cost_usd)
        s.replayed_cost_usd += c.replayed_cost_usd
        durations.append(c.duration_s)
        if s.slowest is None or c.duration_s > s.slowest['duration_s']:
            s.slowest = {'nodeid': c.nodeid, 'case': c.case, 'duration_s': round(c.duration_s, 6)}
    logical = logical_cases(cases, pass_k)
    s.logical_cases = len(logical)
    s.logical_passed = sum(lc.passed for lc in logical)
    s.errored_cases = sum(lc.status == 'error' for lc in logical)
    s.flaky = [
        {'case': lc.key, 'passed': lc.n_passed, 'runs': lc.n, 'pass_ratio': round(lc.n_passed / lc.n, 4)}
        for lc in logical
        if lc.flaky
    ]
    if logical:
        s.pass_rate = s.logical_passed / len(logical)
        s.pass_rate_lower_bound = wilson_lower_bound(s.logical_passed, len(logical))
    n_assert = sum(t[1] for t in assertion_totals.values())
    if n_assert:
        s.assertion_pass_rate = sum(t[0] for t in assertion_totals.values()) / n_assert
    s.evaluator_pass_rates = {k: t[0] / t[1] for k, t in sorted(assertion_totals.items())}
    s.score_averages = {k: sum(v) / len(v) for k, v in sorted(score_values.items())}
    s.metric_averages = {k: sum(v) / len(v) for k, v in sorted(metric_values.items())}
    s.p95_duration_s = _percentile(durations, 0.95)
    return s


def _at(actual: float, threshold: float) -> bool:
    # Sums and means of floats miss by the last bits (0.7, 0.8, 0.9 average to 0.7999999999999999): a value
    # equal to the threshold but for rounding is at it, and holds.
    return math.isclose(actual, threshold, rel_tol=1e-9, abs_tol=1e-12)


def at_least(actual: float, threshold: float) -> bool:
    """Whether a minimum holds: `actual` is at or above `threshold`, a miss in the last bits of a float counting as at."""
    return actual >= threshold or _at(actual, threshold)


def at_most(actual: float, threshold: float) -> bool:
    """Whether a maximum holds: `actual` is at or below `threshold`, a miss in the last bits of a float counting as at."""
    return actual <= threshold or _at(actual, threshold)


def _min(name: str, scope: str, threshold: float, actual: float | None) -> GateResult:
    value = None if actual is None else round(actual, 6)
    return GateResult(name, scope, threshold, value, actual is not None and at_least(actual, threshold))


def _max(name: str, scope: str, threshold: float, actual: float) -> GateResult:
    return GateResult(name, scope, threshold, round(actual, 10), at_most(actual, threshold))


def _cost(name: str, scope: str, threshold: float, actual: float, usage: Usage) -> GateResult:
    # A cost that counted unpriced requests as $0 is a lower bound: a gate passed on it would have checked nothing.
    note = usage.unpriced_note
    if note is None:
        return _max(name, scope, threshold, actual)
    return GateResult(name, scope, threshold, round(actual, 10), False, f'not checked: {note}')


def evaluate_gate(gate: Gate, stats: Stats, scope: str) -> list[GateResult]:
    """Check every threshold a gate sets against a set of statistics."""
    results: list[GateResult] = []
    if gate.min_pass_rate is not None:
        results.append(_min('min_pass_rate', scope, gate.min_pass_rate, stats.pass_rate))
    if gate.min_pass_rate_lower_bound is not None:
        results.append(
            _min('min_pass_rate_lower_bound', scope, gate.min_pass_rate_lower_bound, stats.pass_rate_lower_bound)
        )
    if gate.min_assertion_pass_rate is not None:
        results.append(_min('min_assertion_pass_rate', scope, gate.min_assertion_pass_rate, stats.assertion_pass_rate))
    for name, threshold in gate.min_evaluator_pass_rate.items():
        results.append(_min(f'min_evaluator_pass_rate[{name}]', scope, threshold, stats.evaluator_pass_rates.get(name)))
    for name, threshold in gate.min_score_avg.items():
        results.append(_min(f'min_score_avg[{name}]', scope, threshold, stats.score_averages.get(name)))
    for name, threshold in gate.min_metric_avg.items():
        results.append(_min(f'min_metric_avg[{name}]', scope, threshold, stats.metric_averages.get(name)))
    for name, threshold in gate.max_metric_avg.items():
        actual = stats.metric_averages.get(name)
        results.append(
            _max(f'max_metric_avg[{name}]', scope, threshold, actual)
            if actual is not None
            else GateResult(f'max_metric_avg[{name}]', scope, threshold, None, False, f'no case reported metric {name}')
        )
    if gate.max_errors is not None:
        results.append(_max('max_errors', scope, gate.max_errors, stats.errored_cases))
    if gate.max_cost_usd is not None:
        results.append(_cost('max_cost_usd', scope, gate.max_cost_usd, stats.usage.cost_usd, stats.usage))
    if gate.max_cost_per_case_usd is not None:
        results.append(
            _cost('max_cost_per_case_usd', scope, gate.max_cost_per_case_usd, stats.max_case_cost_usd, stats.usage)
        )
    if gate.max_total_tokens is not None:
        results.append(_max('max_total_tokens', scope, gate.max_total_tokens, stats.usage.total_tokens))
    if gate.max_p95_duration_s is not None:
        results.append(_max('max_p95_duration_s', scope, gate.max_p95_duration_s, stats.p95_duration_s))
    return results


def analysis_values(analyses: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Every value a gate can name in a suite run's analyses (pydantic-evals' `ReportAnalysis`, dumped)."""
    values: dict[str, float] = {}
    for a in analyses:
        title = str(a.get('title') or a.get('type'))
        kind = a.get('type')
        if kind == 'scalar' and _is_number(a.get('value')):
            values[title] = float(a['value'])
        elif kind == 'confusion_matrix':
            labels: list[str] = list(a.get('class_labels') or [])
            matrix: list[list[int]] = list(a.get('matrix') or [])
            total = sum(sum(row) for row in matrix)
            if total:
                values[f'{title}.accuracy'] = sum(matrix[i][i] for i in range(len(labels))) / total
            for i, label in enumerate(labels):
                predicted = sum(row[i] for row in matrix)  # rows are expected classes, columns predicted ones
                actual = sum(matrix[i])
                if predicted:
                    values[f'{title}.precision[{label}]'] = matrix[i][i] / predicted
                if actual:
                    values[f'{title}.recall[{label}]'] = matrix[i][i] / actual
        elif kind == 'precision_recall':
            curves: list[dict[str, Any]] = list(a.get('curves') or [])
            for curve in curves:
                if _is_number(curve.get('auc')):
                    values[f'{title}.auc[{curve.get("name")}]'] = float(curve['auc'])
    return values


def evaluate_analysis_gate(gate: Gate, analyses: Sequence[Mapping[str, Any]] | None, scope: str) -> list[GateResult]:
    """Check a gate's `min_analysis` thresholds; a key no analysis has fails, naming the keys there are."""
    if not gate.min_analysis:
        return []
    values = analysis_values(analyses or [])
    results: list[GateResult] = []
    for key, threshold in gate.min_analysis.items():
        if key in values:
            results.append(_min(f'min_analysis[{key}]', scope, threshold, values[key]))
            continue
        known = ', '.join(sorted(values)) or 'none (the dataset has no report_evaluators, or they have not run)'
        detail = f'no analysis value {key!r} in {scope}; the analyses give: {known}'
        results.append(GateResult(f'min_analysis[{key}]', scope, threshold, None, False, detail))
    return results
