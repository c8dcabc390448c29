"""A short history of runs, for the HTML report's trends: one line of per-suite figures per run.

Each run that writes an HTML report appends one JSON line to `history.jsonl` beside its JSON report, and keeps the
last `keep` runs, the retention of the trace store (`--evaltrace-retention`), so the trends cover the runs the store
keeps. A line holds only figures (rates, averages, cost, counts), never case data, so it needs no scrubbing.
A shard of a run is not recorded (its figures are partial); a re-scoring run is, marked with `rescored_from`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from ..safety.files import write_text_atomic

__all__ = ('HISTORY_FILE', 'read_history', 'record_run', 'run_summary')

HISTORY_FILE = 'history.jsonl'


def run_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a run that its trends draw (pure): per suite run and for the session."""

    def figures(stats: Mapping[str, Any]) -> dict[str, Any]:
        usage = cast('Mapping[str, Any]', stats.get('usage') or {})
        return {
            'cases': stats.get('cases', 0),
            'passed': stats.get('passed', 0),
            'failed': stats.get('failed', 0),
            'error': stats.get('error', 0),
            'pass_rate': stats.get('pass_rate'),
            'assertion_pass_rate': stats.get('assertion_pass_rate'),
            'score_averages': dict(cast('Mapping[str, float]', stats.get('score_averages') or {})),
            'cost_usd': usage.get('cost_usd', 0.0),
            'p95_duration_s': stats.get('p95_duration_s'),
        }

    summary: dict[str, Any] = {
        'run_id': report.get('run_id'),
        'started_at': report.get('started_at'),
        'complete': bool(report.get('complete', True)),
        'session': figures(cast('Mapping[str, Any]', report.get('session', {})).get('stats') or {}),
        'suites': {s['suite']: figures(s.get('stats') or {}) for s in report.get('suites', [])},
    }
    if report.get('rescored_from'):
        summary['rescored_from'] = report['rescored_from']
    return summary


def read_history(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in `path`, oldest first; a missing file is no history, a broken line is skipped."""
    try:
        text = path.read_text(encoding='utf-8')
    except OSError:
        return []
    runs: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(cast('dict[str, Any]', entry).get('suites'), dict):
            runs.append(cast('dict[str, Any]', entry))
    return runs


def record_run(path: Path, report: Mapping[str, Any], keep: int | None) -> list[dict[str, Any]]:
    """Add `report`'s run to the history at `path` (replacing an earlier line of the same run id), keep the last
    `keep` runs (all when None or 0), write the file atomically and return the runs, oldest first.

    A shard's report is not recorded: its figures are a part of a run's.

    Raises:
        OSError: The file could not be written.
    """
    runs = read_history(path)
    shard = cast('Mapping[str, Any]', report.get('shard') or {})
    if int(shard.get('count', 1) or 1) > 1:
        return runs
    summary = run_summary(report)
    runs = [r for r in runs if r.get('run_id') != summary['run_id']] + [summary]
    if keep:
        runs = runs[-keep:]
    write_text_atomic(path, ''.join(json.dumps(r, separators=(',', ':')) + '\n' for r in runs))
    return runs
