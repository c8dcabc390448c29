"""Merging shard reports into one report, with every gate recomputed on the merged cases (pure).

A merge is complete only when every shard 1..n is there exactly once, planned from the same selection, each shard ran
all of its expected cases, and no case ran twice. Anything else is a problem: the merged report says
`complete: false`, carries a failed `complete` gate naming each problem, and so never passes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..collect.shard import ShardPlan
from ..results.case import CaseResult, GateResult
from .final import BaselineInput, Report, as_report, build
from .parts import SuiteInfo, gate_to_dict, split_experiment

__all__ = ('MergeResult', 'merge_reports')

MAX_LISTED = 10


@dataclass(frozen=True)
class MergeResult:
    """The merged report and the problems that make it incomplete (empty when it is complete)."""

    final: Report
    problems: list[str]

    @property
    def report(self) -> dict[str, Any]:
        """The merged report's JSON."""
        return self.final.to_json()


def _listed(names: Sequence[str]) -> str:
    shown = ', '.join(names[:MAX_LISTED])
    return shown + (f' and {len(names) - MAX_LISTED} more' if len(names) > MAX_LISTED else '')


def _shard_problems(sources: Sequence[tuple[str, Report]]) -> list[str]:
    problems: list[str] = []
    plans = [(name, r.shard) for name, r in sources]
    counts = sorted({int(p.get('count', 1)) for _, p in plans})
    if len(counts) > 1:
        listing = ', '.join(f'{name} is {p.get("index", 1)}/{p.get("count", 1)}' for name, p in plans)
        problems.append(f'the reports come from runs split in different numbers of shards ({listing})')
        return problems
    count = counts[0]
    by_index: dict[int, list[str]] = {}
    for name, p in plans:
        by_index.setdefault(int(p.get('index', 1)), []).append(name)
    for index in range(1, count + 1):
        names = by_index.get(index, [])
        if not names:
            problems.append(f'shard {index}/{count} is missing: pass the reports of all {count} shards')
        elif len(names) > 1:
            problems.append(f'shard {index}/{count} is given more than once ({", ".join(names)})')
    digests = {ShardPlan.from_dict(p) for _, p in plans}
    known = {d for d in digests if d is not None}
    if len({(d.total_cases, d.plan_digest) for d in known}) > 1:
        problems.append('the shards were planned from different selections of cases (other -k, datasets or code)')
    elif known and len(by_index) == count and all(len(v) == 1 for v in by_index.values()):
        total = next(iter(known)).total_cases
        expected = sum(len(r.expected) for _, r in sources)
        if expected != total:
            problems.append(f'the shards expected {expected} cases together, but the run selected {total}')
    for name, r in sources:
        if not r.complete:
            problems.append(f'{name} is incomplete (interrupted, or some of its cases did not run)')
    return problems


def merge_reports(
    reports: Sequence[tuple[str, Report | Mapping[str, Any]]],
    *,
    run_id: str | None = None,
    baseline: BaselineInput | None = None,
) -> MergeResult:
    """Merge shard reports (`(name, report)` pairs, `name` used in messages) and recompute every gate, and the
    comparison with `baseline` when given, on the merged cases (pure).

    The session gate is the first shard's; a shard with a different session gate is a problem.
    """
    if not reports:
        raise ValueError('no reports to merge')
    sources = [(name, as_report(r)) for name, r in reports]
    problems = _shard_problems(sources)
    suites: dict[str, SuiteInfo] = {}
    cases: list[CaseResult] = []
    seen: dict[str, str] = {}
    twice: list[str] = []
    expected: list[str] = []
    expected_set: set[str] = set()
    gates = [r.session.gate for _, r in sources]
    filters = [r.session.filter for _, r in sources]
    if len(set(filters)) > 1:
        problems.append('the shards were run with different filters (--evaltrace-filter)')
    shards_of: dict[str, list[SuiteInfo]] = {}
    for name, r in sources:
        for s in r.suites:
            suites.setdefault(s.suite, s.info)
            if any(c.suite == s.suite for c in r.cases):
                shards_of.setdefault(s.suite, []).append(s.info)
        for c in r.cases:
            if c.nodeid in seen:
                twice.append(f'{c.nodeid} ({seen[c.nodeid]}, {name})')
                continue
            seen[c.nodeid] = name
            cases.append(c)
        for n in r.expected:
            if n not in expected_set:
                expected_set.add(n)
                expected.append(n)
    for suite, infos in shards_of.items():
        if len(infos) > 1:
            suites[suite] = dataclasses.replace(suites[suite], experiment=split_experiment(infos))
    # A plain test runs in every shard: each failing one is listed once.
    others = list(dict.fromkeys(n for _, r in sources for n in r.other_failures))
    if twice:
        problems.append(f'{len(twice)} case(s) ran more than once: {_listed(twice)}')
    never = [n for n in expected if n not in seen]
    if never:
        problems.append(f'{len(never)} expected case(s) never ran: {_listed(never)}')
    if any(gate_to_dict(g) != gate_to_dict(gates[0]) for g in gates):
        problems.append('the shards were run with different session gates ([tool.evaltrace.gate])')
    started = sorted(r.started_at for _, r in sources)
    finished = sorted(r.finished_at or '' for _, r in sources)
    complete_gate = GateResult(
        'complete',
        'session',
        'every shard once, every case once',
        'complete' if not problems else f'{len(problems)} problem(s)',
        not problems,
        '; '.join(problems) or None,
    )
    merged = build(
        run_id=run_id or uuid.uuid4().hex[:12],
        started_at=started[0] or dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds'),
        finished_at=finished[-1] or None,
        complete=not problems,
        suites=list(suites.values()),
        cases=cases,
        session_gate=gates[0],
        expected=expected,
        case_filter=filters[0],
        extra_gates=[complete_gate],
        extra={
            **({'other_failures': others} if others else {}),
            'merge': {
                'sources': [
                    {'name': name, 'run_id': r.run_id, 'shard': dict(r.shard), 'complete': r.complete}
                    for name, r in sources
                ],
                'problems': problems,
            },
        },
        baseline=baseline,
    )
    return MergeResult(merged, problems)
