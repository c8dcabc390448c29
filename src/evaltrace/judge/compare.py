"""The comparison of a run with its baseline as typed values, and the regression gates it allows (pure).

Cases are matched by suite and case name (repeats folded by the k-of-n rule, see `compact_cases`). A case
whose inputs digest differs is *changed*: listed, not compared. The deltas are taken over the cases present in both
runs with the same inputs, so an added, removed or changed case does not move them. `to_json` gives the report's
`baseline` object (`report.schema.json`); `from_json` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..results.case import CaseResult, GateResult
from .gates import Gate, at_most, logical_cases

__all__ = (
    'AssertionChange',
    'BaselineComparison',
    'Comparison',
    'CostDelta',
    'Delta',
    'SuiteComparison',
    'compact_cases',
    'compare_runs',
    'regression_gates',
)

MAX_LISTED = 10
"""Assertion regressions named in a gate's detail, the rest counted."""


def compact_cases(cases: Iterable[CaseResult], pass_k: Mapping[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Fold a run's case results into `{suite: {case: compact}}`, repeats folded by the k-of-n rule.

    An assertion counts as passed when it held in at least k of the case's n runs, the same rule as the case itself.
    A score is averaged over the runs: a run that errored before giving it counts 0 (as in `_score_pair`), one that
    ran without it is left out. The status is the logical case's (`LogicalCase.status`).
    """
    out: dict[str, dict[str, Any]] = {}
    for lc in logical_cases(cases, pass_k):
        first = lc.runs[0]
        k = min(lc.k, lc.n)
        held: dict[str, int] = {}
        for run in lc.runs:
            for name, ev in run.assertions.items():
                held[name] = held.get(name, 0) + bool(ev.value)
        scores: dict[str, list[float]] = {}
        for name in {name for run in lc.runs for name in run.scores}:
            for run in lc.runs:
                ev = run.scores.get(name)
                if ev is not None and isinstance(ev.value, int | float) and not isinstance(ev.value, bool):
                    scores.setdefault(name, []).append(float(ev.value))
                elif ev is None and run.status == 'error':
                    scores.setdefault(name, []).append(0.0)
        entry: dict[str, Any] = {
            'status': lc.status,
            'assertions': {name: count >= k for name, count in sorted(held.items())},
            'scores': {name: _round(sum(v) / len(v)) for name, v in sorted(scores.items())},
            'cost_usd': round(sum(r.usage.cost_usd for r in lc.runs) / lc.n, 10),
            'inputs_hash': first.inputs_hash,
        }
        if lc.n > 1:
            entry['runs'] = lc.n
            entry['passed_runs'] = lc.n_passed
        out.setdefault(first.suite, {})[first.case] = entry
    return out


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Delta:
    """A rate or an average, in the baseline and now (None where no compared case has it), rounded to 6 places."""

    baseline: float | None
    current: float | None
    delta: float | None

    def to_json(self) -> dict[str, float | None]:
        return {'baseline': self.baseline, 'current': self.current, 'delta': self.delta}

    @classmethod
    def of(cls, base: float | None, cur: float | None) -> Delta:
        delta = None if base is None or cur is None else cur - base
        return cls(_round(base), _round(cur), _round(delta))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delta:
        return cls(data.get('baseline'), data.get('current'), data.get('delta'))


@dataclass(frozen=True)
class CostDelta:
    """A cost in USD, in the baseline and now, with its growth in percent (None: growth from nothing)."""

    baseline: float
    current: float
    delta: float
    delta_pct: float | None

    def to_json(self) -> dict[str, float | None]:
        return {'baseline': self.baseline, 'current': self.current, 'delta': self.delta, 'delta_pct': self.delta_pct}

    @classmethod
    def of(cls, base: float, cur: float) -> CostDelta:
        if base > 0:
            pct: float | None = round((cur - base) / base * 100, 4)
        else:
            pct = 0.0 if cur <= 0 else None  # growth from nothing has no percentage
        return cls(round(base, 10), round(cur, 10), round(cur - base, 10), pct)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CostDelta:
        return cls(
            float(data.get('baseline') or 0.0),
            float(data.get('current') or 0.0),
            float(data.get('delta') or 0.0),
            data.get('delta_pct'),
        )


@dataclass(frozen=True)
class AssertionChange:
    """An assertion of a case that held in the baseline and fails now (a regression), or the reverse (a fix)."""

    case: str
    assertion: str

    def to_json(self) -> dict[str, str]:
        return {'case': self.case, 'assertion': self.assertion}


_LISTS = ('newly_failing', 'newly_fixed', 'added', 'removed', 'changed')


@dataclass(frozen=True)
class Comparison:
    """A suite run (or the whole run) against the baseline: deltas over the compared cases, and what changed."""

    compared: int = 0
    pass_rate: Delta = Delta(None, None, None)
    assertion_pass_rate: Delta = Delta(None, None, None)
    evaluator_pass_rates: Mapping[str, Delta] = field(default_factory=dict[str, Delta])
    score_averages: Mapping[str, Delta] = field(default_factory=dict[str, Delta])
    cost_usd: CostDelta = CostDelta(0.0, 0.0, 0.0, 0.0)
    """Of the compared cases."""
    total_cost_usd: CostDelta | None = None
    """Of the whole suite run (None for a suite run the baseline does not have)."""
    newly_failing: tuple[str, ...] = ()
    newly_fixed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    """Inputs differ: listed, not compared."""
    assertion_regressions: tuple[AssertionChange, ...] = ()
    assertion_fixes: tuple[AssertionChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            'compared': self.compared,
            'pass_rate': self.pass_rate.to_json(),
            'assertion_pass_rate': self.assertion_pass_rate.to_json(),
            'evaluator_pass_rates': {k: v.to_json() for k, v in self.evaluator_pass_rates.items()},
            'score_averages': {k: v.to_json() for k, v in self.score_averages.items()},
            'cost_usd': self.cost_usd.to_json(),
            **({'total_cost_usd': self.total_cost_usd.to_json()} if self.total_cost_usd is not None else {}),
            **{key: list(getattr(self, key)) for key in _LISTS},
            'assertion_regressions': [a.to_json() for a in self.assertion_regressions],
            'assertion_fixes': [a.to_json() for a in self.assertion_fixes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        def deltas(key: str) -> dict[str, Delta]:
            found: Mapping[str, Any] = data.get(key) or {}
            return {k: Delta.from_json(v) for k, v in found.items()}

        def changes(key: str) -> tuple[AssertionChange, ...]:
            found: list[Mapping[str, Any]] = data.get(key) or []
            return tuple(AssertionChange(str(a['case']), str(a['assertion'])) for a in found)

        total: Any = data.get('total_cost_usd')
        return cls(
            compared=int(data.get('compared') or 0),
            pass_rate=Delta.from_json(data.get('pass_rate') or {}),
            assertion_pass_rate=Delta.from_json(data.get('assertion_pass_rate') or {}),
            evaluator_pass_rates=deltas('evaluator_pass_rates'),
            score_averages=deltas('score_averages'),
            cost_usd=CostDelta.from_json(data.get('cost_usd') or {}),
            total_cost_usd=CostDelta.from_json(cast(Mapping[str, Any], total)) if isinstance(total, dict) else None,
            **{key: _names_of(data.get(key)) for key in _LISTS},
            assertion_regressions=changes('assertion_regressions'),
            assertion_fixes=changes('assertion_fixes'),
        )


def _names_of(value: Any) -> tuple[str, ...]:
    return tuple(str(n) for n in cast(list[Any], value)) if isinstance(value, list) else ()


@dataclass(frozen=True)
class SuiteComparison:
    """A suite run against the baseline's suite run of the same id."""

    suite: str
    in_baseline: bool
    comparison: Comparison

    def to_json(self) -> dict[str, Any]:
        return {'suite': self.suite, 'in_baseline': self.in_baseline, **self.comparison.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuiteComparison:
        return cls(str(data['suite']), bool(data.get('in_baseline', True)), Comparison.from_json(data))


@dataclass(frozen=True)
class BaselineComparison:
    """A run against a baseline: per suite run, and for the whole run."""

    run_id: str | None
    """The baseline's run."""
    created_at: str | None
    removed_known: bool
    """Whether cases missing from the run count as removed (not for one shard of a run)."""
    removed_suites: tuple[str, ...]
    suites: tuple[SuiteComparison, ...]
    session: Comparison

    def suite(self, suite: str) -> Comparison | None:
        return next((s.comparison for s in self.suites if s.suite == suite), None)

    def to_json(self) -> dict[str, Any]:
        return {
            'run_id': self.run_id,
            'created_at': self.created_at,
            'removed_known': self.removed_known,
            'removed_suites': list(self.removed_suites),
            'suites': [s.to_json() for s in self.suites],
            'session': self.session.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineComparison:
        suites: list[Mapping[str, Any]] = data.get('suites') or []
        return cls(
            run_id=data.get('run_id'),
            created_at=data.get('created_at'),
            removed_known=bool(data.get('removed_known', True)),
            removed_suites=_names_of(data.get('removed_suites')),
            suites=tuple(SuiteComparison.from_json(s) for s in suites),
            session=Comparison.from_json(data.get('session') or {}),
        )


_Compact = Mapping[str, Any]
"""A case as a baseline holds it (see `compact_cases`)."""


@dataclass
class _Pairs:
    """The cases of a suite (or of the session) matched between the baseline and the current run, while matching."""

    compared: list[tuple[str, _Compact, _Compact]] = field(default_factory=list[tuple[str, _Compact, _Compact]])
    newly_failing: list[str] = field(default_factory=list[str])
    newly_fixed: list[str] = field(default_factory=list[str])
    added: list[str] = field(default_factory=list[str])
    removed: list[str] = field(default_factory=list[str])
    changed: list[str] = field(default_factory=list[str])
    assertion_regressions: list[AssertionChange] = field(default_factory=list[AssertionChange])
    assertion_fixes: list[AssertionChange] = field(default_factory=list[AssertionChange])

    def extend(self, other: _Pairs) -> None:
        self.compared.extend(other.compared)
        for key in _LISTS:
            getattr(self, key).extend(getattr(other, key))
        self.assertion_regressions.extend(other.assertion_regressions)
        self.assertion_fixes.extend(other.assertion_fixes)

    def comparison(self, total_cost_usd: CostDelta | None = None) -> Comparison:
        """Pass rates, per-evaluator pass rates, score averages and cost over the compared cases, and the lists."""
        compared = self.compared
        names = sorted({a for _, b, c in compared for a in (*b.get('assertions', {}), *c.get('assertions', {}))})
        evaluators: dict[str, Delta] = {}
        for name in names:
            both = [(b['assertions'][name], c['assertions'][name]) for _, b, c in compared
                    if name in b.get('assertions', {}) and name in c.get('assertions', {})]  # fmt: skip
            evaluators[name] = Delta.of(_rate([x for x, _ in both]), _rate([y for _, y in both]))
        score_names = sorted({s for _, b, c in compared for s in (*b.get('scores', {}), *c.get('scores', {}))})
        scores: dict[str, Delta] = {}
        for name in score_names:
            both = [pair for _, b, c in compared if (pair := _score_pair(name, b, c)) is not None]
            scores[name] = Delta.of(_mean([x for x, _ in both]), _mean([y for _, y in both]))
        all_base = [v for _, b, _c in compared for v in b.get('assertions', {}).values()]
        all_cur = [v for _, _b, c in compared for v in c.get('assertions', {}).values()]
        return Comparison(
            compared=len(compared),
            pass_rate=Delta.of(
                _rate([b['status'] == 'passed' for _, b, _c in compared]),
                _rate([c['status'] == 'passed' for _, _b, c in compared]),
            ),
            assertion_pass_rate=Delta.of(_rate(all_base), _rate(all_cur)),
            evaluator_pass_rates=evaluators,
            score_averages=scores,
            cost_usd=CostDelta.of(
                sum(b.get('cost_usd', 0.0) for _, b, _c in compared),
                sum(c.get('cost_usd', 0.0) for _, _b, c in compared),
            ),
            total_cost_usd=total_cost_usd,
            **{key: tuple(getattr(self, key)) for key in _LISTS},
            assertion_regressions=tuple(self.assertion_regressions),
            assertion_fixes=tuple(self.assertion_fixes),
        )


def _score_pair(name: str, base: _Compact, cur: _Compact) -> tuple[float, float] | None:
    """A case's score in the baseline and now, or None when it is not compared.

    A score the case had in the baseline and lost to an error now counts as 0, as `no_assertion_regressions`
    counts a lost assertion: otherwise an errored case drops out of the average, and a run whose every case errors
    compares nothing. A case that ran and no longer has the score (its evaluator changed) is left out.
    """
    before = base.get('scores', {}).get(name)
    if before is None:
        return None
    now = cur.get('scores', {}).get(name)
    if now is None:
        return (before, 0.0) if cur.get('status') == 'error' else None
    return before, now


def _match(suite: str, base: Mapping[str, _Compact], cur: Mapping[str, _Compact], removed_known: bool) -> _Pairs:
    pairs = _Pairs()
    for name, c in cur.items():
        key = f'{suite}[{name}]'
        b = base.get(name)
        if b is None:
            pairs.added.append(key)
            continue
        if b.get('inputs_hash') and c.get('inputs_hash') and b['inputs_hash'] != c['inputs_hash']:
            pairs.changed.append(key)
            continue
        pairs.compared.append((key, b, c))
        if b['status'] == 'passed' and c['status'] != 'passed':
            pairs.newly_failing.append(key)
        elif b['status'] != 'passed' and c['status'] == 'passed':
            pairs.newly_fixed.append(key)
        for assertion, held in b.get('assertions', {}).items():
            now = c['assertions'].get(assertion)
            # An assertion lost because the case errored did not pass; one whose evaluator was removed is not compared.
            if now is None and c['status'] == 'error':
                now = False
            if held and now is False:
                pairs.assertion_regressions.append(AssertionChange(key, assertion))
            elif not held and now is True:
                pairs.assertion_fixes.append(AssertionChange(key, assertion))
    if removed_known:
        pairs.removed.extend(f'{suite}[{name}]' for name in base if name not in cur)
    return pairs


def _rate(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare_runs(
    baseline: Mapping[str, Any],
    cases: Sequence[CaseResult],
    suite_costs: Sequence[tuple[str, float]],
    pass_k: Mapping[str, int],
    *,
    removed_known: bool = True,
) -> BaselineComparison:
    """Compare a run with a baseline: per suite and for the whole session (pure).

    Args:
        baseline: A baseline written by `report.baseline.make_baseline`.
        cases: The run's case results.
        suite_costs: The run's suite runs, in order, each with its total cost.
        pass_k: Each suite's k of the k-of-n rule, for a suite that repeats its cases.
        removed_known: Whether cases missing from the run count as removed; false for a single shard of a run,
            whose other cases ran elsewhere.
    """
    current = compact_cases(cases, pass_k)
    base_suites: Mapping[str, Any] = baseline.get('suites', {})
    session = _Pairs()
    suites: list[SuiteComparison] = []
    session_total_base = 0.0
    session_total_cur = 0.0
    for sid, total_cur in suite_costs:
        base = base_suites.get(sid)
        cur_cases = current.get(sid, {})
        if base is None:
            pairs = _Pairs(added=[f'{sid}[{name}]' for name in cur_cases])
            suites.append(SuiteComparison(sid, False, pairs.comparison()))
            session.extend(pairs)
            continue
        pairs = _match(sid, base.get('cases', {}), cur_cases, removed_known)
        session.extend(pairs)
        total_base = float(base.get('stats', {}).get('cost_usd', 0.0))
        session_total_base += total_base
        session_total_cur += total_cur
        suites.append(SuiteComparison(sid, True, pairs.comparison(CostDelta.of(total_base, total_cur))))
    present = {sid for sid, _ in suite_costs}
    removed_suites = sorted(sid for sid in base_suites if sid not in present) if removed_known else []
    for sid in removed_suites:
        session.removed.extend(f'{sid}[{name}]' for name in base_suites[sid].get('cases', {}))
    return BaselineComparison(
        run_id=baseline.get('run_id'),
        created_at=baseline.get('created_at'),
        removed_known=removed_known,
        removed_suites=tuple(removed_suites),
        suites=tuple(suites),
        session=session.comparison(CostDelta.of(session_total_base, session_total_cur)),
    )


def _names(items: Sequence[AssertionChange]) -> str:
    shown = ', '.join(f'{i.case} {i.assertion}' for i in items[:MAX_LISTED])
    return shown + (f' and {len(items) - MAX_LISTED} more' if len(items) > MAX_LISTED else '')


def regression_gates(
    gate: Gate, comparison: Comparison | None, scope: str, unpriced: str | None = None
) -> list[GateResult]:
    """The regression gates a gate sets, checked against a suite's (or the session's) comparison.

    Without a baseline each regression gate is reported as not checked (passed, with a note), so it is visible.
    `unpriced` says why the run's cost is only a lower bound (`Usage.unpriced_note`): the cost gate then fails as
    not checked.
    """
    results: list[GateResult] = []
    if not gate.has_regression_gates:
        return results
    if comparison is None:
        note = 'no baseline to compare with: not checked'
        if gate.no_assertion_regressions:
            results.append(GateResult('no_assertion_regressions', scope, 0, None, True, note))
        if gate.max_score_drop is not None:
            results.append(GateResult('max_score_drop', scope, gate.max_score_drop, None, True, note))
        if gate.max_cost_increase_pct is not None:
            results.append(GateResult('max_cost_increase_pct', scope, gate.max_cost_increase_pct, None, True, note))
        return results
    if gate.no_assertion_regressions:
        regressions = comparison.assertion_regressions
        detail = f'failing now, passed in the baseline: {_names(regressions)}' if regressions else None
        results.append(GateResult('no_assertion_regressions', scope, 0, len(regressions), not regressions, detail))
    if gate.max_score_drop is not None:
        for name, d in comparison.score_averages.items():
            if d.baseline is None or d.current is None:
                continue
            drop = round(d.baseline - d.current, 6)
            passed = at_most(drop, gate.max_score_drop)
            results.append(
                GateResult(
                    f'max_score_drop[{name}]', scope, gate.max_score_drop, drop, passed, f'{d.baseline} -> {d.current}'
                )
            )
    if gate.max_cost_increase_pct is not None and unpriced is not None:
        results.append(
            GateResult(
                'max_cost_increase_pct', scope, gate.max_cost_increase_pct, None, False, f'not checked: {unpriced}'
            )
        )
    elif gate.max_cost_increase_pct is not None:
        cost = comparison.cost_usd
        pct = cost.delta_pct
        passed = pct is not None and at_most(pct, gate.max_cost_increase_pct)
        detail = f'${cost.baseline:.6f} -> ${cost.current:.6f}' + (
            ' (the baseline cost nothing)' if pct is None else ''
        )
        results.append(GateResult('max_cost_increase_pct', scope, gate.max_cost_increase_pct, pct, passed, detail))
    return results
