"""What the run report is made of (suite infos, the results collected while the session runs), and writing it: JSON,
written atomically so that it is valid at every moment (the report itself, built and read back: `report.final`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic_core import to_json

from ..judge.gates import Gate, evaluate_analysis_gate, gate_from_mapping
from ..results.case import CaseResult, GateResult
from ..safety.files import write_text_atomic

__all__ = ('SCHEMA_VERSION', 'SuiteInfo', 'gate_to_dict', 'write_json_atomic')

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
    """The suite run's experiment, once its report was built (see `run.experiment.experiment_summary`)."""

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


def _records(experiment: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return list(experiment.get(key) or [])


def split_experiment(infos: Sequence[SuiteInfo]) -> dict[str, Any]:
    """The experiment of a suite run whose cases ran in several shards (`evaltrace merge`): each shard's report
    evaluators and `report_check` saw only its own cases, so no shard's analyses or checks stand for the run. Kept:
    the report evaluators that raised in any shard, and the names of the checks, which `experiment_checks` reports as
    not checked."""
    experiments: list[Mapping[str, Any]] = [i.experiment for i in infos if i.experiment is not None]
    failures: list[dict[str, Any]] = [f for e in experiments for f in _records(e, 'report_evaluator_failures')]
    checks = dict.fromkeys(str(c['name']) for e in experiments for c in _records(e, 'report_checks'))
    first: Mapping[str, Any] = experiments[0] if experiments else {}
    return {
        'name': first.get('name', infos[0].name),
        'analyses': [],
        'report_evaluator_failures': failures,
        'report_checks': [{'name': name, 'passed': False, 'error': None} for name in checks],
        'split_shards': len(infos),
    }


def experiment_checks(info: SuiteInfo) -> list[GateResult]:
    """The suite run's checks on its report, as gates: analysis thresholds, report evaluators that raised (named,
    with their error), and the suite's `report_check`. A suite run split across shards has its analysis thresholds
    and checks not checked (see `split_experiment`): each fails, saying so."""
    experiment: Mapping[str, Any] = info.experiment or {}
    note = None
    if split := experiment.get('split_shards'):
        note = (
            f"not checked: the suite run ran in {split} shards, and each shard's report evaluators saw only its own "
            'cases; run it in one shard (or unsharded) to check it'
        )
    results: list[GateResult] = []
    if info.gate is not None and note is not None:
        results.extend(
            GateResult(f'min_analysis[{key}]', info.suite, threshold, None, False, note)
            for key, threshold in info.gate.min_analysis.items()
        )
    elif info.gate is not None:
        results.extend(evaluate_analysis_gate(info.gate, experiment.get('analyses'), info.suite))
    results.extend(
        GateResult(f'report_evaluator {f["name"]}', info.suite, 'runs without error', f['error_message'], False)
        for f in _records(experiment, 'report_evaluator_failures')
    )
    results.extend(
        GateResult(f'report_check {c["name"]}', info.suite, 'holds', None, False, note)
        if note is not None
        else GateResult(f'report_check {c["name"]}', info.suite, 'holds', c['error'] or 'held', bool(c['passed']))
        for c in _records(experiment, 'report_checks')
    )
    return results


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see a half-written file."""
    # pydantic-core's encoder: several times faster than `json`, for a report rewritten while thousands of cases run.
    write_text_atomic(path, to_json(data, indent=1, fallback=repr).decode() + '\n')


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
