"""What the HTML report's views draw besides the cases, as data (pure): the verdict and the per-case comparison
with the baseline.

The verdict is the one `views.ci.verdict` decides for the markdown summary, with the counts the header shows beside it,
so a run whose failing cases are all under passing gates reads as passed, as its exit status says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..judge.compare import compact_cases
from ..report.decide import failing_cases, report_verdict, ungated_failures
from ..report.final import Report, as_report
from ..results.case import CaseResult

__all__ = ('MAX_LISTED_CASES', 'case_deltas', 'verdict_view')

MAX_LISTED_CASES = 1000
"""At most this many cases of each kind (regressed, improved, new, removed, changed) are listed; the rest counted."""
_EPS = 1e-9


def verdict_view(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The run's verdict word and what the header says beside it: failing cases inside and outside gates, and the
    gates that failed."""
    run = as_report(report)  # once: reading a report's JSON is most of this function's cost for a large run
    failing = failing_cases(run)
    ungated = ungated_failures(run)
    gates = [gate for _, gate in run.gates]
    return {
        'word': report_verdict(run).word,
        'failing': len(failing),
        'ungated': len(ungated),
        'gated': len(failing) - len(ungated),
        'gates': len(gates),
        'gates_failed': sum(not g.passed for g in gates),
    }


def case_deltas(baseline: Mapping[str, Any] | None, report: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per case, what changed against the baseline (pure): the cases that regressed and improved with their status,
    score and cost deltas; the cases new, removed and changed (inputs or expected output differ), by name. None without a baseline.

    A compared case regressed when it stopped passing, an assertion that held fails now, or a score dropped; it
    improved when none of that happened and it was fixed, an assertion now holds or a score rose. Repeats are
    folded by the k-of-n rule, as in the baseline. Each list is cut at `MAX_LISTED_CASES`, with its full count.
    """
    if not baseline:
        return None
    cases = [CaseResult.from_dict(c) for c in report.get('cases', [])]
    pass_k = {s['suite']: s['pass_k'] for s in report.get('suites', []) if s.get('pass_k')}
    current = compact_cases(cases, pass_k)
    base_suites = cast('Mapping[str, Any]', baseline.get('suites') or {})
    kinds: dict[str, list[Any]] = {'regressed': [], 'improved': [], 'new': [], 'removed': [], 'changed': []}
    present: set[str] = set()
    for suite in report.get('suites', []):
        sid = str(suite['suite'])
        present.add(sid)
        base_suite = cast('Mapping[str, Any]', base_suites.get(sid) or {})
        base_cases = cast('Mapping[str, Any]', base_suite.get('cases') or {})
        cur_cases = current.get(sid, {})
        for name, cur in cur_cases.items():
            base = base_cases.get(name)
            if base is None:
                kinds['new'].append({'suite': sid, 'case': name, 'status': cur['status']})
            elif base.get('inputs_hash') and cur.get('inputs_hash') and base['inputs_hash'] != cur['inputs_hash']:
                kinds['changed'].append({'suite': sid, 'case': name, 'status': cur['status']})
            else:
                entry = _delta_entry(sid, name, base, cur)
                if entry is not None:
                    kinds[entry.pop('kind')].append(entry)
        if sid in base_suites:
            kinds['removed'] += [{'suite': sid, 'case': n, 'status': b.get('status')} for n, b in base_cases.items()
                                 if n not in cur_cases]  # fmt: skip
    removed_known = bool(cast('Mapping[str, Any]', report.get('baseline') or {}).get('removed_known', True))
    for sid, base_suite in base_suites.items():
        if sid not in present and removed_known:
            base_cases = cast('Mapping[str, Any]', base_suite.get('cases') or {})
            kinds['removed'] += [{'suite': sid, 'case': n, 'status': b.get('status')} for n, b in base_cases.items()]
    kinds['regressed'].sort(key=lambda e: (e['status'][1] == 'passed', e['score_delta']))
    kinds['improved'].sort(key=lambda e: (e['status'][1] != 'passed', -e['score_delta']))
    return {
        'counts': {kind: len(entries) for kind, entries in kinds.items()},
        **{kind: entries[:MAX_LISTED_CASES] for kind, entries in kinds.items()},
    }


def _delta_entry(suite: str, name: str, base: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any] | None:
    was, now = str(base.get('status')), str(cur['status'])
    base_assertions = cast('Mapping[str, bool]', base.get('assertions') or {})
    cur_assertions = cast('Mapping[str, bool]', cur.get('assertions') or {})
    lost = sorted(a for a, held in base_assertions.items() if held and cur_assertions.get(a) is False)
    gained = sorted(a for a, held in base_assertions.items() if not held and cur_assertions.get(a) is True)
    scores: dict[str, list[float]] = {}
    base_scores = cast('Mapping[str, Any]', base.get('scores') or {})
    for score, value in cast('Mapping[str, Any]', cur.get('scores') or {}).items():
        before = base_scores.get(score)
        if isinstance(before, int | float) and isinstance(value, int | float):
            scores[score] = [float(before), float(value)]
    drops = [b - c for b, c in scores.values()]
    regressed = (was == 'passed' and now != 'passed') or bool(lost) or any(d > _EPS for d in drops)
    improved = (was != 'passed' and now == 'passed') or bool(gained) or any(d < -_EPS for d in drops)
    if not regressed and not improved:
        return None
    base_cost, cur_cost = float(base.get('cost_usd') or 0.0), float(cur.get('cost_usd') or 0.0)
    return {
        'kind': 'regressed' if regressed else 'improved',
        'suite': suite,
        'case': name,
        'status': [was, now],
        'assertions_lost': lost,
        'assertions_gained': gained,
        'scores': scores,
        'score_delta': round(sum(c - b for b, c in scores.values()), 6),
        'cost_usd': [base_cost, cur_cost],
    }
