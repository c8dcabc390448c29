"""Baselines: a compact, committable digest of a run, and the comparison of a later run against it (pure).

A baseline keeps, per suite and per case (repeats folded by the k-of-n rule): the status, each assertion's pass or
fail, the score averages, the cost per run and the digest of the case's inputs. A later run is compared case by case,
matched by suite and case name. A case whose inputs digest differs is *changed*: it is listed, not compared. The
deltas (pass rates, score averages, cost) are taken over the cases present in both runs with the same inputs, so an
added, removed or changed case does not move them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._gates import Gate, logical_cases
from ._report import write_json_atomic
from ._results import CaseResult, GateResult

if TYPE_CHECKING:
    from ._final import Report

__all__ = (
    'BASELINE_KIND',
    'BaselineError',
    'apply_baseline',
    'compact_cases',
    'compare',
    'compare_runs',
    'load_baseline',
    'make_baseline',
    'regression_gates',
    'save_baseline',
)

BASELINE_KIND = 'baseline'
BASELINE_SCHEMA_VERSION = 1
MAX_LISTED = 10


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file and what is wrong."""


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def compact_cases(cases: Iterable[CaseResult], pass_k: Mapping[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Fold a run's case results into `{suite: {case: compact}}`, repeats folded by the k-of-n rule.

    An assertion counts as passed when it held in at least k of the case's n runs, the same rule as the case itself.
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
        for run in lc.runs:
            for name, ev in run.scores.items():
                if isinstance(ev.value, int | float) and not isinstance(ev.value, bool):
                    scores.setdefault(name, []).append(float(ev.value))
        if lc.passed:
            status = 'passed'
        elif any(r.status == 'failed' for r in lc.runs):
            status = 'failed'
        else:
            status = 'error'
        entry: dict[str, Any] = {
            'status': status,
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


def make_baseline(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The baseline of a complete report: compact, with sorted keys, so that it diffs well when committed."""
    from ._final import as_report

    run = as_report(report)
    if not run.complete:
        raise BaselineError('the report is incomplete (interrupted, or cases did not run); run the evals again')
    if run.shard_count > 1:
        raise BaselineError('the report is one shard of a run; merge the shards first (evaltrace merge)')
    if not run.cases:
        raise BaselineError('the report has no cases (a run that selected no eval case); run the evals first')
    compact = compact_cases(run.cases, run.pass_k)
    suites: dict[str, Any] = {}
    for suite in run.suites:
        stats = suite.stats
        suites[suite.suite] = {
            'name': suite.info.name,
            'dataset': suite.info.dataset,
            'stats': {
                'cases': stats.logical_cases,
                'passed': stats.logical_passed,
                'pass_rate': _round(stats.pass_rate),
                'assertion_pass_rate': _round(stats.assertion_pass_rate),
                'evaluator_pass_rates': {k: _round(v) for k, v in stats.evaluator_pass_rates.items()},
                'score_averages': {k: _round(v) for k, v in stats.score_averages.items()},
                'cost_usd': round(stats.usage.cost_usd, 10),
                'total_tokens': stats.usage.total_tokens,
            },
            'cases': compact.get(suite.suite, {}),
        }
    return {
        'tool': 'evaltrace',
        'kind': BASELINE_KIND,
        'schema_version': BASELINE_SCHEMA_VERSION,
        'run_id': run.run_id,
        'created_at': run.finished_at or dt.datetime.now(dt.UTC).isoformat(timespec='seconds'),
        'suites': suites,
    }


def save_baseline(report: Report | Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Write the baseline of a report to `path` (atomically) and return it."""
    baseline = make_baseline(report)
    write_json_atomic(path, json.loads(json.dumps(baseline, sort_keys=True)))
    return baseline


def load_baseline(path: Path) -> dict[str, Any] | None:
    """Read a baseline file; None when it does not exist, `BaselineError` when it is not a baseline."""
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise BaselineError(f'{path}: not a valid JSON baseline: {e}') from None
    if not isinstance(data, dict) or data.get('kind') != BASELINE_KIND:  # pyright: ignore[reportUnknownMemberType]
        raise BaselineError(f'{path}: not an evaltrace baseline (write one with `evaltrace baseline save`)')
    if not isinstance(data.get('suites'), dict):  # pyright: ignore[reportUnknownMemberType]
        raise BaselineError(f'{path}: baseline has no "suites" table')
    return data  # pyright: ignore[reportUnknownVariableType]


@dataclass
class _Pairs:
    """The cases of a suite (or of the session) matched between the baseline and the current run."""

    compared: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list[tuple[str, dict[str, Any], dict[str, Any]]]
    )
    newly_failing: list[str] = field(default_factory=list[str])
    newly_fixed: list[str] = field(default_factory=list[str])
    added: list[str] = field(default_factory=list[str])
    removed: list[str] = field(default_factory=list[str])
    changed: list[str] = field(default_factory=list[str])
    assertion_regressions: list[dict[str, str]] = field(default_factory=list[dict[str, str]])
    assertion_fixes: list[dict[str, str]] = field(default_factory=list[dict[str, str]])

    def extend(self, other: _Pairs) -> None:
        for f in ('compared', 'newly_failing', 'newly_fixed', 'added', 'removed', 'changed'):
            getattr(self, f).extend(getattr(other, f))
        self.assertion_regressions.extend(other.assertion_regressions)
        self.assertion_fixes.extend(other.assertion_fixes)


def _match(
    suite: str, base: Mapping[str, dict[str, Any]], cur: Mapping[str, dict[str, Any]], removed_known: bool
) -> _Pairs:
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
                pairs.assertion_regressions.append({'case': key, 'assertion': assertion})
            elif not held and now is True:
                pairs.assertion_fixes.append({'case': key, 'assertion': assertion})
    if removed_known:
        pairs.removed.extend(f'{suite}[{name}]' for name in base if name not in cur)
    return pairs


def _rate(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _delta(base: float | None, cur: float | None) -> dict[str, float | None]:
    delta = None if base is None or cur is None else cur - base
    return {'baseline': _round(base), 'current': _round(cur), 'delta': _round(delta)}


def _metrics(pairs: _Pairs) -> dict[str, Any]:
    """Pass rates, per-evaluator pass rates, score averages and cost over the compared cases, baseline vs now."""
    compared = pairs.compared
    names = sorted({a for _, b, c in compared for a in (*b.get('assertions', {}), *c.get('assertions', {}))})
    evaluators: dict[str, Any] = {}
    for name in names:
        both = [(b['assertions'][name], c['assertions'][name]) for _, b, c in compared
                if name in b.get('assertions', {}) and name in c.get('assertions', {})]  # fmt: skip
        evaluators[name] = _delta(_rate([x for x, _ in both]), _rate([y for _, y in both]))
    score_names = sorted({s for _, b, c in compared for s in (*b.get('scores', {}), *c.get('scores', {}))})
    scores: dict[str, Any] = {}
    for name in score_names:
        both = [(b['scores'][name], c['scores'][name]) for _, b, c in compared
                if b.get('scores', {}).get(name) is not None and c.get('scores', {}).get(name) is not None]  # fmt: skip
        scores[name] = _delta(_mean([x for x, _ in both]), _mean([y for _, y in both]))
    all_assertions_base = [v for _, b, _c in compared for v in b.get('assertions', {}).values()]
    all_assertions_cur = [v for _, _b, c in compared for v in c.get('assertions', {}).values()]
    base_cost = sum(b.get('cost_usd', 0.0) for _, b, _c in compared)
    cur_cost = sum(c.get('cost_usd', 0.0) for _, _b, c in compared)
    return {
        'compared': len(compared),
        'pass_rate': _delta(
            _rate([b['status'] == 'passed' for _, b, _c in compared]),
            _rate([c['status'] == 'passed' for _, _b, c in compared]),
        ),
        'assertion_pass_rate': _delta(_rate(all_assertions_base), _rate(all_assertions_cur)),
        'evaluator_pass_rates': evaluators,
        'score_averages': scores,
        'cost_usd': {
            'baseline': round(base_cost, 10),
            'current': round(cur_cost, 10),
            'delta': round(cur_cost - base_cost, 10),
            'delta_pct': _pct_change(base_cost, cur_cost),
        },
    }


def _pct_change(base: float, cur: float) -> float | None:
    if base > 0:
        return round((cur - base) / base * 100, 4)
    return 0.0 if cur <= 0 else None  # growth from nothing has no percentage


def _listing(pairs: _Pairs) -> dict[str, Any]:
    return {
        'newly_failing': pairs.newly_failing,
        'newly_fixed': pairs.newly_fixed,
        'added': pairs.added,
        'removed': pairs.removed,
        'changed': pairs.changed,
        'assertion_regressions': pairs.assertion_regressions,
        'assertion_fixes': pairs.assertion_fixes,
    }


def compare(
    baseline: Mapping[str, Any], report: Report | Mapping[str, Any], *, removed_known: bool = True
) -> dict[str, Any]:
    """Compare a run's report with a baseline (see `compare_runs`)."""
    from ._final import as_report

    run = as_report(report)
    suites = [(s.suite, s.stats.usage.cost_usd) for s in run.suites]
    return compare_runs(baseline, run.cases, suites, run.pass_k, removed_known=removed_known)


def compare_runs(
    baseline: Mapping[str, Any],
    cases: Sequence[CaseResult],
    suite_costs: Sequence[tuple[str, float]],
    pass_k: Mapping[str, int],
    *,
    removed_known: bool = True,
) -> dict[str, Any]:
    """Compare a run with a baseline: per suite and for the whole session (pure).

    Args:
        baseline: A baseline written by `make_baseline`.
        cases: The run's case results.
        suite_costs: The run's suite runs, in order, each with its total cost.
        pass_k: Each suite's k of the k-of-n rule, for a suite that repeats its cases.
        removed_known: Whether cases missing from the run count as removed; false for a single shard of a run,
            whose other cases ran elsewhere.
    """
    current = compact_cases(cases, pass_k)
    base_suites: Mapping[str, Any] = baseline.get('suites', {})
    session = _Pairs()
    suites: list[dict[str, Any]] = []
    session_total_base = 0.0
    session_total_cur = 0.0
    for sid, total_cur in suite_costs:
        base = base_suites.get(sid)
        cur_cases = current.get(sid, {})
        if base is None:
            pairs = _Pairs(added=[f'{sid}[{name}]' for name in cur_cases])
            suites.append({'suite': sid, 'in_baseline': False, **_metrics(pairs), **_listing(pairs)})
            session.extend(pairs)
            continue
        pairs = _match(sid, base.get('cases', {}), cur_cases, removed_known)
        session.extend(pairs)
        total_base = float(base.get('stats', {}).get('cost_usd', 0.0))
        session_total_base += total_base
        session_total_cur += total_cur
        suites.append(
            {
                'suite': sid,
                'in_baseline': True,
                **_metrics(pairs),
                'total_cost_usd': _cost_delta(total_base, total_cur),
                **_listing(pairs),
            }
        )
    present = {sid for sid, _ in suite_costs}
    removed_suites = sorted(sid for sid in base_suites if sid not in present) if removed_known else []
    for sid in removed_suites:
        session.removed.extend(f'{sid}[{name}]' for name in base_suites[sid].get('cases', {}))
    return {
        'run_id': baseline.get('run_id'),
        'created_at': baseline.get('created_at'),
        'removed_known': removed_known,
        'removed_suites': removed_suites,
        'suites': suites,
        'session': {
            **_metrics(session),
            'total_cost_usd': _cost_delta(session_total_base, session_total_cur),
            **_listing(session),
        },
    }


def _cost_delta(base: float, cur: float) -> dict[str, float | None]:
    return {
        'baseline': round(base, 10),
        'current': round(cur, 10),
        'delta': round(cur - base, 10),
        'delta_pct': _pct_change(base, cur),
    }


def _names(items: Sequence[dict[str, str]]) -> str:
    shown = ', '.join(f'{i["case"]} {i["assertion"]}' for i in items[:MAX_LISTED])
    return shown + (f' and {len(items) - MAX_LISTED} more' if len(items) > MAX_LISTED else '')


def regression_gates(gate: Gate, comparison: Mapping[str, Any] | None, scope: str) -> list[GateResult]:
    """The regression gates a gate sets, checked against a suite's (or the session's) comparison.

    Without a baseline each regression gate is reported as not checked (passed, with a note), so it is visible.
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
        regressions: list[dict[str, str]] = comparison['assertion_regressions']
        detail = f'failing now, passed in the baseline: {_names(regressions)}' if regressions else None
        results.append(GateResult('no_assertion_regressions', scope, 0, len(regressions), not regressions, detail))
    if gate.max_score_drop is not None:
        for name, d in comparison['score_averages'].items():
            if d['baseline'] is None or d['current'] is None:
                continue
            drop = round(d['baseline'] - d['current'], 6)
            results.append(
                GateResult(
                    f'max_score_drop[{name}]',
                    scope,
                    gate.max_score_drop,
                    drop,
                    drop <= gate.max_score_drop + 1e-9,
                    f'{d["baseline"]} -> {d["current"]}',
                )
            )
    if gate.max_cost_increase_pct is not None:
        cost = comparison['cost_usd']
        pct = cost['delta_pct']
        passed = pct is not None and pct <= gate.max_cost_increase_pct + 1e-9
        detail = f'${cost["baseline"]:.6f} -> ${cost["current"]:.6f}' + (
            ' (the baseline cost nothing)' if pct is None else ''
        )
        results.append(GateResult('max_cost_increase_pct', scope, gate.max_cost_increase_pct, pct, passed, detail))
    return results


def apply_baseline(
    report: Report | dict[str, Any],
    baseline: Mapping[str, Any] | None,
    *,
    baseline_path: str | None,
    session_gate: Gate | None,
    removed_known: bool = True,
) -> dict[str, Any]:
    """The JSON of a report with the comparison with a baseline and its regression gates; a report given as JSON is
    updated in place. A session and a merge build the typed report with its baseline at once (`_final.build`)."""
    from ._final import BaselineInput, add_baseline, as_report

    found = BaselineInput(baseline_path, baseline)
    data = add_baseline(as_report(report), found, session_gate=session_gate, removed_known=removed_known).to_json()
    if isinstance(report, dict):
        report.clear()
        report.update(data)
        return report
    return data
