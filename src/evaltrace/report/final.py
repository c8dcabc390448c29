"""The run's report as one typed value: built once, by pure functions, from the case results, the suites, the gates
and the baseline; serialised to JSON (`report.schema.json`) by `Report.to_json`; read back by `Report.from_json`.

A session builds its report with `build` (stats, gates, the baseline comparison and the regression gates, in one pass),
decides its verdict from the value (`report.decide.decide`), and writes it once. The summaries, the CI outputs and
`evaltrace merge` read the same value; nothing writes a dict, reads it back and amends it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..judge.compare import BaselineComparison, compare_runs, regression_gates
from ..judge.gates import Gate, Stats, compute_stats, evaluate_gate, gate_from_mapping
from ..names import SESSION_GATE_NODE
from ..results.case import CaseResult, GateResult
from .parts import SCHEMA_VERSION, SuiteInfo, experiment_checks, gate_to_dict

__all__ = (
    'BaselineInput',
    'BaselineReport',
    'Report',
    'RunVerdict',
    'SessionReport',
    'SuiteReport',
    'add_baseline',
    'as_report',
    'build',
    'read_report',
)

_KNOWN = frozenset(
    {
        'schema_version', 'tool', 'run_id', 'started_at', 'finished_at', 'complete', 'shard', 'expected', 'missing',
        'session', 'suites', 'cases', 'baseline', 'verdict',
    }
)  # fmt: skip
"""Top-level keys the typed report holds; any other (`interrupted`, `cancelled`, `merge`, ...) is kept as written."""


@dataclass(frozen=True)
class RunVerdict:
    """The verdict of a run: one word, the exit status, and why."""

    word: str
    """`passed`, `failed`, `gate failed`, `incomplete`, `error`, or pytest's `interrupted` / `pytest status N`."""
    exit_status: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {'word': self.word, 'exit_status': self.exit_status, 'reason': self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunVerdict:
        return cls(str(data['word']), int(data['exit_status']), str(data.get('reason', '')))


@dataclass(frozen=True)
class SuiteReport:
    """A suite run in the report: what it is, its statistics, and its gates (thresholds, checks, regressions)."""

    info: SuiteInfo
    stats: Stats
    gates: tuple[GateResult, ...] = ()

    @property
    def suite(self) -> str:
        return self.info.suite

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_json(self) -> dict[str, Any]:
        info = self.info
        return {
            'suite': info.suite,
            'name': info.name,
            'dataset': info.dataset,
            'dataset_path': info.dataset_path,
            'repeat': info.repeat,
            'pass_k': info.pass_k,
            'gate_spec': gate_to_dict(info.gate),
            'stats': self.stats.to_dict(),
            'experiment': dict(info.experiment) if info.experiment is not None else None,
            'gates': [g.to_dict() for g in self.gates],
            'passed': self.passed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuiteReport:
        gates = tuple(GateResult.from_dict(g) for g in _list(data.get('gates')))
        return cls(SuiteInfo.from_dict(data), Stats.from_dict(data.get('stats') or {}), gates)


@dataclass(frozen=True)
class SessionReport:
    """The whole run: its statistics, the session gate (`[tool.evaltrace.gate]`) and its results."""

    stats: Stats
    gate: Gate | None = None
    gates: tuple[GateResult, ...] = ()
    filter: str | None = None
    """The `--evaltrace-filter` the run selected its cases with."""


@dataclass(frozen=True)
class BaselineReport:
    """The comparison with the baseline, or why there is none (`error`; neither: the file does not exist)."""

    path: str | None
    comparison: BaselineComparison | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {'path': self.path, 'error': self.error}
        if self.comparison is None:
            return {'path': self.path, 'missing': True}
        return {'path': self.path, **self.comparison.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineReport:
        path = data.get('path')
        if data.get('error'):
            return cls(path, error=str(data['error']))
        if data.get('missing'):
            return cls(path)
        return cls(path, BaselineComparison.from_json(data))


@dataclass(frozen=True)
class BaselineInput:
    """A baseline to compare a run with, as loaded (`report.baseline.load_baseline`): its data, or why it is
    unusable."""

    path: str | None
    """As the report names it (relative to the rootdir when it is under it)."""
    data: Mapping[str, Any] | None
    """None when the file does not exist."""
    error: str | None = None


@dataclass(frozen=True)
class Report:
    """The report of a run (a session's, a shard's, or a merge's)."""

    run_id: str
    started_at: str
    finished_at: str | None
    complete: bool
    session: SessionReport
    suites: tuple[SuiteReport, ...] = ()
    cases: tuple[CaseResult, ...] = ()
    expected: tuple[str, ...] = ()
    shard: Mapping[str, Any] = field(default_factory=lambda: {'index': 1, 'count': 1})
    """`index` and `count`, and the shard plan when the run was split (`collect.shard.ShardPlan`)."""
    extra: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """What only some runs say: `interrupted`, `cancelled`, `not_started`, `merge`, a re-scoring's source."""
    baseline: BaselineReport | None = None
    verdict: RunVerdict | None = None
    """As the session decided it, with what only pytest knew (see `report.decide.report_verdict`)."""
    schema_version: int = SCHEMA_VERSION

    @property
    def missing(self) -> list[str]:
        """Expected cases with no result (interrupted, or a worker that died)."""
        done = {c.nodeid for c in self.cases}
        return [n for n in self.expected if n not in done]

    @property
    def gates(self) -> list[tuple[str, GateResult]]:
        """Every gate result with the node id it belongs to: its suite run's, or `evaltrace` for the session's."""
        found = [(s.suite, g) for s in self.suites for g in s.gates]
        return found + [(SESSION_GATE_NODE, g) for g in self.session.gates]

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for _, g in self.gates)

    @property
    def pass_k(self) -> dict[str, int]:
        return {s.suite: s.info.pass_k for s in self.suites if s.info.pass_k}

    @property
    def shard_count(self) -> int:
        return int(self.shard.get('count', 1))

    @property
    def merge_problems(self) -> list[str]:
        merge: Mapping[str, Any] = self.extra.get('merge') or {}
        return list(merge.get('problems') or [])

    @property
    def other_failures(self) -> list[str]:
        """Failed pytest items that are no failing eval case (plain tests, a broken dataset's item): they fail the
        run, and a merge of shards too."""
        listed: list[Any] = list(self.extra.get('other_failures') or [])
        return [str(n) for n in listed]

    def suite_cases(self, suite: str) -> list[CaseResult]:
        return [c for c in self.cases if c.suite == suite]

    def with_verdict(self, verdict: RunVerdict) -> Report:
        return dataclasses.replace(self, verdict=verdict)

    def to_json(self) -> dict[str, Any]:
        """The report as `report.json` holds it (`report.schema.json`)."""
        session = self.session
        data: dict[str, Any] = {
            'schema_version': self.schema_version,
            'tool': 'evaltrace',
            'run_id': self.run_id,
            'started_at': self.started_at,
            'finished_at': self.finished_at,
            'complete': self.complete,
            'shard': dict(self.shard),
            'expected': list(self.expected),
            # An incomplete run names what it lost: expected cases with no result.
            **({'missing': self.missing} if not self.complete else {}),
            'session': {
                'stats': session.stats.to_dict(),
                'gate_spec': gate_to_dict(session.gate),
                'gates': [g.to_dict() for g in session.gates],
                'gates_passed': self.gates_passed,
                'filter': session.filter,
            },
            'suites': [s.to_json() for s in self.suites],
            'cases': [c.to_dict() for c in self.cases],
            **self.extra,
        }
        if self.baseline is not None:
            data['baseline'] = self.baseline.to_json()
        if self.verdict is not None:
            data['verdict'] = self.verdict.to_dict()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """The report of `to_json` (or an older one), shape already checked (`report.shape`); `ValueError` if it cannot
        be held (a gate spec with unknown keys)."""
        s: Mapping[str, Any] = data['session']
        spec = s.get('gate_spec')
        session = SessionReport(
            Stats.from_dict(s.get('stats') or {}),
            gate_from_mapping(spec) if spec else None,
            tuple(GateResult.from_dict(g) for g in _list(s.get('gates'))),
            s.get('filter'),
        )
        baseline: Any = data.get('baseline')
        verdict: Any = data.get('verdict')
        return cls(
            run_id=str(data['run_id']),
            started_at=str(data.get('started_at') or ''),
            finished_at=data.get('finished_at'),
            complete=bool(data.get('complete', True)),
            session=session,
            suites=tuple(SuiteReport.from_json(x) for x in _list(data.get('suites'))),
            cases=tuple(CaseResult.from_dict(c) for c in _list(data.get('cases'))),
            expected=tuple(str(n) for n in _list(data.get('expected'))),
            shard=dict(data.get('shard') or {'index': 1, 'count': 1}),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
            baseline=BaselineReport.from_json(cast(Mapping[str, Any], baseline))
            if isinstance(baseline, dict)
            else None,
            verdict=RunVerdict.from_dict(cast(Mapping[str, Any], verdict)) if isinstance(verdict, dict) else None,
            schema_version=int(data.get('schema_version', SCHEMA_VERSION)),
        )


def _list(value: Any) -> list[Any]:
    return cast(list[Any], value) if isinstance(value, list) else []


def as_report(report: Report | Mapping[str, Any]) -> Report:
    """The typed report, from itself or from its JSON (the pure functions take either)."""
    return report if isinstance(report, Report) else Report.from_json(report)


def build(
    *,
    run_id: str,
    started_at: str,
    finished_at: str | None,
    complete: bool,
    suites: Sequence[SuiteInfo],
    cases: Sequence[CaseResult],
    session_gate: Gate | None,
    expected: Sequence[str] = (),
    shard: Mapping[str, Any] | None = None,
    case_filter: str | None = None,
    extra_gates: Sequence[GateResult] = (),
    extra: Mapping[str, Any] | None = None,
    baseline: BaselineInput | None = None,
    whole_selection: bool = True,
) -> Report:
    """Build the report in one pass (pure): per-suite stats and gates, session totals and gates, and, given a
    baseline, the comparison with it and the regression gates.

    `whole_selection` is false when the run selected some cases only (`-k`, a filter, a file or node id, `--lf`):
    the baseline's cases it did not run are then not listed as removed, as for one shard of a run.
    """
    pass_k = {s.suite: s.pass_k for s in suites if s.pass_k}
    by_suite: dict[str, list[CaseResult]] = {}
    for c in cases:
        by_suite.setdefault(c.suite, []).append(c)
    suite_reports: list[SuiteReport] = []
    for info in suites:
        stats = compute_stats(by_suite.get(info.suite, []), pass_k)
        gates = evaluate_gate(info.gate, stats, info.suite) if info.gate is not None else []
        gates.extend(experiment_checks(info))
        suite_reports.append(SuiteReport(info, stats, tuple(gates)))
    session_stats = compute_stats(cases, pass_k)
    session_gates = evaluate_gate(session_gate, session_stats, 'session') if session_gate is not None else []
    report = Report(
        run_id=run_id,
        started_at=started_at,
        finished_at=finished_at,
        complete=complete,
        session=SessionReport(session_stats, session_gate, (*session_gates, *extra_gates), case_filter),
        suites=tuple(suite_reports),
        cases=tuple(cases),
        expected=tuple(expected),
        shard=dict(shard) if shard is not None else {'index': 1, 'count': 1},
        extra=dict(extra or {}),
    )
    if baseline is None:
        return report
    removed_known = whole_selection and report.shard_count == 1
    return add_baseline(report, baseline, session_gate=session_gate, removed_known=removed_known)


def add_baseline(
    report: Report, baseline: BaselineInput, *, session_gate: Gate | None, removed_known: bool = True
) -> Report:
    """The report with the comparison with a baseline and the regression gates it allows (pure).

    Regression gates of a suite's gate go into that suite's gates, those of the session gate into the session's.
    An unusable baseline (`error`) is named and compared with nothing; a missing one is named only when a
    regression gate wanted it (each such gate is then reported as not checked).
    """
    if baseline.error is not None:
        return dataclasses.replace(report, baseline=BaselineReport(baseline.path, error=baseline.error))
    comparison = (
        compare_runs(
            baseline.data,
            report.cases,
            [(s.suite, s.stats.usage.cost_usd) for s in report.suites],
            report.pass_k,
            removed_known=removed_known,
        )
        if baseline.data is not None
        else None
    )
    added = False
    suites: list[SuiteReport] = []
    for suite in report.suites:
        gate = suite.info.gate
        found = comparison.suite(suite.suite) if comparison is not None else None
        if gate is None or (comparison is not None and found is None):
            suites.append(suite)
            continue
        gates = regression_gates(gate, found, suite.suite, suite.stats.usage.unpriced_note)
        added = added or bool(gates)
        suites.append(dataclasses.replace(suite, gates=(*suite.gates, *gates)))
    session = report.session
    if session_gate is not None:
        gates = regression_gates(
            session_gate,
            None if comparison is None else comparison.session,
            'session',
            report.session.stats.usage.unpriced_note,
        )
        added = added or bool(gates)
        session = dataclasses.replace(session, gates=(*session.gates, *gates))
    named: BaselineReport | None = None
    if comparison is not None:
        named = BaselineReport(baseline.path, comparison)
    elif added and baseline.path is not None:  # say so only when a regression gate wanted a baseline
        named = BaselineReport(baseline.path)
    return dataclasses.replace(report, suites=tuple(suites), session=session, baseline=named)


def read_report(path: Path) -> Report:
    """Read a report written by evaltrace (the one reader of `report.json`: `evaltrace report`, `baseline save`,
    `merge`), its shape checked against `report.schema.json`, with a one-line error for a missing or broken file."""
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ValueError(f'{path}: no such report') from None
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: not a valid JSON report: {e}') from None
    if not isinstance(data, dict) or data.get('tool') != 'evaltrace':  # pyright: ignore[reportUnknownMemberType]
        raise ValueError(f'{path}: not an evaltrace report')
    from .shape import report_shape_problem

    if (problem := report_shape_problem(data)) is not None:
        raise ValueError(f'{path}: not a valid evaltrace report: {problem}')
    try:
        return Report.from_json(cast(dict[str, Any], data))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'{path}: not a valid evaltrace report: {e}') from None
