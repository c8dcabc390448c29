"""The run report as data: built from case results, written as JSON atomically so it is valid at every moment."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic_core import to_json

from ._files import write_text_atomic
from ._gates import Gate, compute_stats, evaluate_analysis_gate, evaluate_gate, gate_from_mapping
from ._results import CaseResult, GateResult

__all__ = ('SCHEMA_VERSION', 'SuiteInfo', 'build_report', 'gate_to_dict', 'read_report', 'write_json_atomic')

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SuiteInfo:
    """What a report says about a suite besides its cases."""

    suite: str
    name: str
    dataset: str
    dataset_path: str | None = None
    gate: Gate | None = None
    pass_k: int | None = None
    repeat: int = 1
    experiment: Mapping[str, Any] | None = None
    """The suite run's experiment, once its report was built (see `_experiment.experiment_summary`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            'suite': self.suite,
            'name': self.name,
            'dataset': self.dataset,
            'dataset_path': self.dataset_path,
            'gate_spec': gate_to_dict(self.gate),
            'pass_k': self.pass_k,
            'repeat': self.repeat,
            'experiment': dict(self.experiment) if self.experiment is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteInfo:
        gate = data.get('gate_spec')
        return cls(
            suite=data['suite'],
            name=data['name'],
            dataset=data['dataset'],
            dataset_path=data.get('dataset_path'),
            gate=gate_from_mapping(gate) if gate else None,
            pass_k=data.get('pass_k'),
            repeat=data.get('repeat', 1),
            experiment=data.get('experiment'),
        )


def gate_to_dict(gate: Gate | None) -> dict[str, Any] | None:
    if gate is None:
        return None
    return {
        k: (dict(cast(Mapping[str, Any], v)) if isinstance(v, Mapping) else v)
        for k, v in dataclasses.asdict(gate).items()
        if v not in (None, {})
    }


def experiment_checks(info: SuiteInfo) -> list[GateResult]:
    """The suite run's checks on its report, as gates: analysis thresholds, report evaluators that raised (named,
    with their error), and the suite's `report_check`."""
    experiment: Mapping[str, Any] = info.experiment or {}
    results: list[GateResult] = []
    if info.gate is not None:
        results.extend(evaluate_analysis_gate(info.gate, experiment.get('analyses'), info.suite))
    failures: list[dict[str, Any]] = list(experiment.get('report_evaluator_failures') or [])
    results.extend(
        GateResult(f'report_evaluator {f["name"]}', info.suite, 'runs without error', f['error_message'], False)
        for f in failures
    )
    checks: list[dict[str, Any]] = list(experiment.get('report_checks') or [])
    results.extend(
        GateResult(f'report_check {c["name"]}', info.suite, 'holds', c['error'] or 'held', bool(c['passed']))
        for c in checks
    )
    return results


def build_report(
    *,
    run_id: str,
    started_at: str,
    finished_at: str | None,
    complete: bool,
    suites: Sequence[SuiteInfo],
    cases: Sequence[CaseResult],
    session_gate: Gate | None,
    expected: Sequence[str] = (),
    shard: tuple[int, int] = (1, 1),
    case_filter: str | None = None,
    extra_gates: Sequence[GateResult] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the report: cases, per-suite stats and gates, session totals and gates."""
    pass_k = {s.suite: s.pass_k for s in suites if s.pass_k}
    by_suite: dict[str, list[CaseResult]] = {}
    for c in cases:
        by_suite.setdefault(c.suite, []).append(c)
    suite_dicts: list[dict[str, Any]] = []
    all_gates: list[GateResult] = []
    for info in suites:
        suite_cases = by_suite.get(info.suite, [])
        stats = compute_stats(suite_cases, pass_k)
        gates = evaluate_gate(info.gate, stats, info.suite) if info.gate is not None else []
        gates.extend(experiment_checks(info))
        all_gates.extend(gates)
        suite_dicts.append(
            {
                'suite': info.suite,
                'name': info.name,
                'dataset': info.dataset,
                'dataset_path': info.dataset_path,
                'repeat': info.repeat,
                'pass_k': info.pass_k,
                'gate_spec': gate_to_dict(info.gate),
                'stats': stats.to_dict(),
                'experiment': dict(info.experiment) if info.experiment is not None else None,
                'gates': [g.to_dict() for g in gates],
                'passed': all(g.passed for g in gates),
            }
        )
    session_stats = compute_stats(cases, pass_k)
    session_gates = evaluate_gate(session_gate, session_stats, 'session') if session_gate is not None else []
    session_gates = [*session_gates, *extra_gates]
    all_gates.extend(session_gates)
    report: dict[str, Any] = {
        'schema_version': SCHEMA_VERSION,
        'tool': 'evaltrace',
        'run_id': run_id,
        'started_at': started_at,
        'finished_at': finished_at,
        'complete': complete,
        'shard': {'index': shard[0], 'count': shard[1]},
        'expected': list(expected),
        # An incomplete run names what it lost: expected cases with no result (interrupted, or a worker that died).
        **({'missing': _missing(expected, cases)} if not complete else {}),
        'session': {
            'stats': session_stats.to_dict(),
            'gate_spec': gate_to_dict(session_gate),
            'gates': [g.to_dict() for g in session_gates],
            'gates_passed': all(g.passed for g in all_gates),
            'filter': case_filter,
        },
        'suites': suite_dicts,
        'cases': [c.to_dict() for c in cases],
    }
    if extra:
        report.update(extra)
    return report


def _missing(expected: Sequence[str], cases: Sequence[CaseResult]) -> list[str]:
    done = {c.nodeid for c in cases}
    return [n for n in expected if n not in done]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see a half-written file."""
    # pydantic-core's encoder: several times faster than `json`, for a report rewritten while thousands of cases run.
    write_text_atomic(path, to_json(data, indent=1, fallback=repr).decode() + '\n')


def read_report(path: Path) -> dict[str, Any]:
    """Read a report written by evaltrace, with a one-line error for a missing or broken file."""
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ValueError(f'{path}: no such report') from None
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: not a valid JSON report: {e}') from None
    if not isinstance(data, dict) or data.get('tool') != 'evaltrace':  # pyright: ignore[reportUnknownMemberType]
        raise ValueError(f'{path}: not an evaltrace report')
    from ._shape import report_shape_problem

    if (problem := report_shape_problem(data)) is not None:
        raise ValueError(f'{path}: not a valid evaltrace report: {problem}')
    return data  # pyright: ignore[reportUnknownVariableType]


@dataclass
class ReportState:
    """Results collected in the controller while the session runs."""

    cases: dict[str, CaseResult] = field(default_factory=dict[str, CaseResult])
    order: list[str] = field(default_factory=list[str])

    def add(self, result: CaseResult) -> None:
        if result.nodeid not in self.cases:
            self.order.append(result.nodeid)
        self.cases[result.nodeid] = result

    def ordered(self) -> list[CaseResult]:
        return [self.cases[n] for n in self.order]
