"""A journal of finished cases, so that even a hard kill leaves every finished case on disk.

The JSON report is rewritten at most once a second while a run goes on (rewriting it after every case would cost
O(n^2) over a large suite). Between two rewrites, each finished case is appended as one JSON line to a journal next
to the report: one `write()` per case, O(1), and visible to other processes as soon as it returns, so a SIGKILL
loses no finished case. A run that ends normally, or by Ctrl-C or SIGTERM, writes the full report and deletes its
journals; one that was killed leaves them, and the next run's start-up (`recover_at_start`) folds them into the
report (marked `complete: false`, `interrupted: "killed"`).

A journal belongs to the process that writes it: each process (the controller, every xdist worker) writes its own,
`.<report name>.journal.<run id>.<pid>.jsonl`, and holds an exclusive `flock` on it for as long as it lives. The
kernel drops the lock when the process dies, however it dies. So another pytest in the same checkout (even
`--co`) recovers only the journals nobody holds, and never takes a live run's journal from under it. A journal is
made under a temporary name and renamed into place once locked, so no other process ever sees it unlocked.

Recovery never stops a run: a malformed line is skipped and counted, and a journal that cannot be folded (a
read-only folder, a report that cannot be written) is left in place; either way one line says what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from pydantic_core import to_json

if TYPE_CHECKING:
    from ..results.case import CaseResult
    from .final import Report
    from .parts import SuiteInfo

try:  # POSIX; elsewhere every journal counts as dead once its run has ended (no lock to tell a live one)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = (
    'CaseJournal',
    'JournalRecovery',
    'journal_paths',
    'read_journal',
    'recover_at_start',
    'recover_journals',
    'recover_report',
    'remove_journal',
    'run_results',
)


def _prefix(report: Path) -> str:
    return f'.{report.name}.journal'


def journal_paths(report: Path, run_id: str | None = None) -> list[Path]:
    """The journals next to `report` (of one run, when `run_id` is given), oldest first."""
    pattern = f'{_prefix(report)}.{run_id}.*.jsonl' if run_id else f'{_prefix(report)}*.jsonl'
    try:
        paths = list(report.parent.glob(_glob_escape(pattern)))
    except OSError:
        return []
    return sorted(paths, key=_mtime)


def _glob_escape(pattern: str) -> str:
    # Only the name parts we do not control (the report's name) need escaping; `*` stays a wildcard.
    return re.sub(r'([\[\]?])', r'[\1]', pattern)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class CaseJournal:
    """Appends finished cases to this process's journal; opened (and locked) lazily, one `write()` per case."""

    def __init__(self, report: Path, run_id: str = 'run') -> None:
        self.path = report.parent / f'{_prefix(report)}.{run_id}.{os.getpid()}.jsonl'
        self._fd: int | None = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f'{self.path.name}.new')
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(tmp, self.path)  # visible to others only once locked
        except BaseException:
            os.close(fd)
            raise
        return fd

    def append(self, case: dict[str, Any], suite: dict[str, Any]) -> None:
        line = to_json({'case': case, 'suite': suite}, fallback=repr).decode() + '\n'
        if self._fd is None:
            self._fd = self._open()
        os.write(self._fd, line.encode('utf-8'))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_journal(report: Path, run_id: str | None = None) -> None:
    """Delete a finished run's journals (of every process of the run), once the report holds their cases."""
    for path in journal_paths(report, run_id) if run_id else [report.parent / f'{_prefix(report)}.jsonl']:
        path.unlink(missing_ok=True)


def _parse_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    """The entries of a journal's text that are well formed, and how many lines were not (a cut or foreign line)."""
    from ..results.case import CaseResult
    from .parts import SuiteInfo

    entries: list[dict[str, Any]] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            CaseResult.from_dict(entry['case'])  # the shape is checked here, so recovery never meets a bad one
            SuiteInfo.from_dict(entry['suite'])
            if not isinstance(entry['case']['nodeid'], str):
                raise TypeError('nodeid')
        except Exception:
            bad += 1
            continue
        entries.append(cast(dict[str, Any], entry))
    return entries, bad


def run_results(report: Path, run_id: str) -> list[tuple[CaseResult, SuiteInfo]]:
    """The results in every journal of one run (its workers' too), as `recover_journals` would fold them."""
    from ..results.case import CaseResult
    from .parts import SuiteInfo

    return [
        (CaseResult.from_dict(entry['case']), SuiteInfo.from_dict(entry['suite']))
        for path in journal_paths(report, run_id)
        for entry in read_journal(path)
    ]


def read_journal(path: Path) -> list[dict[str, Any]]:
    """A journal's well-formed entries; a line cut short by a kill, or of the wrong shape, is skipped."""
    try:
        text = path.read_text(encoding='utf-8', errors='replace')
    except OSError:
        return []
    return _parse_lines(text)[0]


@contextlib.contextmanager
def _dead_journals(paths: list[Path]) -> Generator[list[tuple[Path, int]]]:
    """The journals of `paths` whose writer is gone, each opened and locked (so that no two runs recover it)."""
    held: list[tuple[Path, int]] = []
    try:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # gone meanwhile, or unreadable: left alone
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held: a live run's journal
                    os.close(fd)
                    continue
            held.append((path, fd))
        yield held
    finally:
        for _, fd in held:
            os.close(fd)


class JournalRecovery:
    """What one start-up recovery did: lines to show the user."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.data: dict[str, Any] | None = None


def _read_fd(fd: int) -> str:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b''.join(chunks).decode('utf-8', errors='replace')


def _previous(report: Path) -> Report | None:
    """The report the dead run wrote last, through the one reader of report.json; a missing or broken one adds
    nothing (the journal holds every case that finished)."""
    from .final import read_report

    try:
        return read_report(report)
    except ValueError:
        return None


def _fold(report: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The report with the journal's entries folded in (entries already checked by `_parse_lines`)."""
    from ..results.case import CaseResult
    from .final import build
    from .parts import SuiteInfo

    previous = _previous(report)
    cases: dict[str, CaseResult] = {c.nodeid: c for c in previous.cases} if previous is not None else {}
    suites: dict[str, SuiteInfo] = {}
    for entry in entries:
        result = CaseResult.from_dict(entry['case'])
        cases[result.nodeid] = result
        info = SuiteInfo.from_dict(entry['suite'])
        suites.setdefault(info.suite, info)
    for suite in previous.suites if previous is not None else ():
        suites.setdefault(suite.suite, suite.info)
    return build(
        run_id=previous.run_id if previous is not None else 'recovered',
        started_at=previous.started_at if previous is not None else '',
        finished_at=None,
        complete=False,
        suites=list(suites.values()),
        cases=list(cases.values()),
        session_gate=None,
        expected=list(previous.expected) if previous is not None else [],
        extra={'interrupted': 'killed'},
    ).to_json()


def recover_journals(report: Path) -> JournalRecovery:
    """Fold the journals of dead runs into `report` (written atomically), and delete them. Never raises.

    A live run's journal (locked by its writer) is left alone. A journal that cannot be folded is left in place.
    """
    from .parts import write_json_atomic

    recovery = JournalRecovery()
    paths = journal_paths(report)
    if not paths:
        return recovery
    try:
        with _dead_journals(paths) as dead:
            if not dead:
                return recovery
            entries: list[dict[str, Any]] = []
            bad = 0
            for _, fd in dead:
                got, skipped = _parse_lines(_read_fd(fd))
                entries.extend(got)
                bad += skipped
            names = ', '.join(p.name for p, _ in dead)
            skipped_note = f'; {bad} malformed line(s) skipped' if bad else ''
            if entries:
                data = _fold(report, entries)
                write_json_atomic(report, data)
                recovery.data = data
                recovery.lines.append(
                    f'evaltrace: recovered {len(entries)} finished case(s) of a killed run from {names} into '
                    f'{report}{skipped_note}'
                )
            elif bad:
                recovery.lines.append(f'evaltrace: nothing to recover from {names}{skipped_note}')
            for path, _ in dead:
                path.unlink(missing_ok=True)
    except Exception as e:  # recovery never stops a run: the journal stays for the next one
        recovery.lines.append(
            f'evaltrace: could not recover the journal(s) of a killed run next to {report} '
            f'({type(e).__name__}: {e}); they are left in place'
        )
    return recovery


def recover_report(report: Path) -> dict[str, Any] | None:
    """Fold the journals of dead runs into their report; the report written, or None when there was nothing."""
    return recover_journals(report).data


class _RecoveryNotes:
    """Shows the start-up recovery's lines at the end of the session (also with `-q`, unlike the header)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.lines:
            terminalreporter.write_line(line, yellow=True)


def recover_at_start(config: pytest.Config, report: Path) -> None:
    """Recover killed runs' journals before this run replaces the report, and say so once the session ends."""
    recovery = recover_journals(report)
    if recovery.lines:
        config.pluginmanager.register(_RecoveryNotes(recovery.lines), 'evaltrace-journal-recovery')
