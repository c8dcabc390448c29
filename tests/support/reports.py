"""Building reports from hand-made case results, for the pure tests of gates, baselines, merges and CI outputs."""

from __future__ import annotations

from typing import Any

from evaltrace.judge.gates import Gate
from evaltrace.report.final import build
from evaltrace.report.parts import SuiteInfo
from evaltrace.results.case import CaseResult, EvalValue
from evaltrace.results.usage import Usage

SUITE = 'evals/test_x.py::test_x'


def case(
    name: str,
    status: str = 'passed',
    *,
    suite: str = SUITE,
    ok: bool | None = None,
    score: float | None = None,
    cost: float = 0.0,
    tokens: int = 0,
    duration: float = 0.1,
    inputs_hash: str | None = None,
    repeat: int | None = None,
    repeats: int = 1,
) -> CaseResult:
    """A case result; `ok` sets the `Equals` assertion (default: passed status), `score` the `quality` score."""
    nodeid = f'{suite}[{name}]' if repeat is None else f'{suite}[{name}#{repeat}]'
    assertions = {} if status == 'error' else {'Equals': EvalValue(status == 'passed' if ok is None else ok)}
    return CaseResult(
        suite=suite,
        case=name,
        nodeid=nodeid,
        status=status,  # type: ignore[arg-type]
        repeat=repeat,
        repeats=repeats,
        assertions=assertions,
        scores={} if score is None else {'quality': EvalValue(score)},
        failures=[] if status == 'passed' else [f'{name} went wrong'],
        duration_s=duration,
        trace_id=f'{abs(hash(nodeid)) % 10**12:032x}',
        trace_url=f'https://example.test/trace/{name}',
        task_usage=Usage(requests=1 if tokens else 0, input_tokens=tokens, output_tokens=0, cost_usd=cost),
        inputs_hash=inputs_hash or f'hash-{name}',
    )


def report(
    cases: list[CaseResult],
    *,
    gate: Gate | None = None,
    session_gate: Gate | None = None,
    pass_k: int | None = None,
    repeat: int = 1,
    expected: list[str] | None = None,
    shard: tuple[int, int] = (1, 1),
    complete: bool = True,
) -> dict[str, Any]:
    suites = sorted({c.suite for c in cases}) or [SUITE]
    return build(
        run_id='r1',
        started_at='2026-01-01T00:00:00+00:00',
        finished_at='2026-01-01T00:01:00+00:00',
        complete=complete,
        suites=[SuiteInfo(s, s.rsplit('::', 1)[-1], 'ds', None, gate, pass_k, repeat) for s in suites],
        cases=cases,
        session_gate=session_gate,
        expected=[c.nodeid for c in cases] if expected is None else expected,
        shard={'index': shard[0], 'count': shard[1]},
    ).to_json()
