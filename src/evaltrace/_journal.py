"""A journal of finished cases, so that even a hard kill leaves every finished case on disk.

The JSON report is rewritten at most once a second while a run goes on (rewriting it after every case would cost
O(n^2) over a large suite). Between two rewrites, each finished case is appended as one JSON line to a journal next
to the report (`.<report name>.journal.jsonl`): one `write()` per case, O(1), and visible to other processes as soon
as it returns, so a SIGKILL loses no finished case. A run that ends normally, or by Ctrl-C or SIGTERM, writes the
full report and deletes the journal; one that was killed leaves it, and `recover_report` folds it into the report
(marked `complete: false`, `interrupted: "killed"`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic_core import to_json

__all__ = ('CaseJournal', 'journal_path', 'read_journal', 'recover_report', 'remove_journal')


def journal_path(report: Path) -> Path:
    return report.parent / f'.{report.name}.journal.jsonl'


class CaseJournal:
    """Appends finished cases to the journal; opened lazily, one line (one `write()`) per case."""

    def __init__(self, report: Path) -> None:
        self.path = journal_path(report)
        self._fd: int | None = None

    def append(self, case: dict[str, Any], suite: dict[str, Any]) -> None:
        line = to_json({'case': case, 'suite': suite}, fallback=repr).decode() + '\n'
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, line.encode('utf-8'))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_journal(report: Path) -> None:
    journal_path(report).unlink(missing_ok=True)


def read_journal(report: Path) -> list[dict[str, Any]]:
    """The journal's entries; a line cut short by a kill (the last one) is skipped."""
    try:
        text = journal_path(report).read_text(encoding='utf-8')
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and 'case' in entry and 'suite' in entry:
            entries.append(entry)  # pyright: ignore[reportUnknownArgumentType]
    return entries


def recover_report(report: Path) -> dict[str, Any] | None:
    """Fold a killed run's journal into its report (written atomically); None when there is nothing to recover."""
    from ._report import SuiteInfo, build_report, write_json_atomic
    from ._results import CaseResult

    entries = read_journal(report)
    if not entries:
        return None
    try:
        previous: dict[str, Any] = json.loads(report.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        previous = {}
    cases: dict[str, CaseResult] = {}
    for c in previous.get('cases', []):
        cases[c.get('nodeid', '')] = CaseResult.from_dict(c)
    suites: dict[str, SuiteInfo] = {}
    for entry in entries:
        result = CaseResult.from_dict(entry['case'])
        cases[result.nodeid] = result
        info = SuiteInfo.from_dict(entry['suite'])
        suites.setdefault(info.suite, info)
    for s in previous.get('suites', []):
        suites.setdefault(s['suite'], SuiteInfo.from_dict(s))
    data = build_report(
        run_id=str(previous.get('run_id', 'recovered')),
        started_at=str(previous.get('started_at', '')),
        finished_at=None,
        complete=False,
        suites=list(suites.values()),
        cases=list(cases.values()),
        session_gate=None,
        expected=previous.get('expected', []),
        extra={'interrupted': 'killed'},
    )
    write_json_atomic(report, data)
    remove_journal(report)
    return data
