"""Baselines: a compact, committable digest of a run, which later runs are compared with (`judge.compare`) (pure).

A baseline keeps, per suite and per case (repeats folded by the k-of-n rule): the status, each assertion's pass or
fail, the score averages, the cost per run and the digest of the case's inputs. A later run is compared case by case,
matched by suite and case name. A case whose inputs digest differs is *changed*: it is listed, not compared. The
deltas (pass rates, score averages, cost) are taken over the cases present in both runs with the same inputs, so an
added, removed or changed case does not move them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..judge.compare import compact_cases
from ..judge.gates import Gate
from .parts import write_json_atomic

if TYPE_CHECKING:
    from .final import Report

__all__ = (
    'BASELINE_KIND',
    'BaselineError',
    'apply_baseline',
    'compare',
    'load_baseline',
    'make_baseline',
    'save_baseline',
)

BASELINE_KIND = 'baseline'
BASELINE_SCHEMA_VERSION = 1


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file and what is wrong."""


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def make_baseline(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """The baseline of a complete report: compact, with sorted keys, so that it diffs well when committed."""
    from .final import as_report

    run = as_report(report)
    if not run.complete:
        raise BaselineError('the report is incomplete (interrupted, or cases did not run); run the evals again')
    if run.shard_count > 1:
        raise BaselineError('the report is one shard of a run; merge the shards first (evaltrace merge)')
    if not run.cases:
        raise BaselineError(
            'the report has no cases (its run skipped every eval case, or selected none); run the evals first'
        )
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


def compare(
    baseline: Mapping[str, Any], report: Report | Mapping[str, Any], *, removed_known: bool = True
) -> dict[str, Any]:
    """The JSON of the comparison of a run's report with a baseline (see `judge.compare.compare_runs`)."""
    from ..judge.compare import compare_runs
    from .final import as_report

    run = as_report(report)
    suites = [(s.suite, s.stats.usage.cost_usd) for s in run.suites]
    return compare_runs(baseline, run.cases, suites, run.pass_k, removed_known=removed_known).to_json()


def apply_baseline(
    report: Report | dict[str, Any],
    baseline: Mapping[str, Any] | None,
    *,
    baseline_path: str | None,
    session_gate: Gate | None,
    removed_known: bool = True,
) -> dict[str, Any]:
    """The JSON of a report with the comparison with a baseline and its regression gates; a report given as JSON is
    updated in place. A session and a merge build the typed report with its baseline at once (`report.final.build`)."""
    from .final import BaselineInput, add_baseline, as_report

    found = BaselineInput(baseline_path, baseline)
    data = add_baseline(as_report(report), found, session_gate=session_gate, removed_known=removed_known).to_json()
    if isinstance(report, dict):
        report.clear()
        report.update(data)
        return report
    return data
