"""Live progress of the running suite runs in the terminal: cases done of total, failures so far, spend so far.

On a terminal, one line per running suite run is kept at the bottom of the output and redrawn in place as cases
finish (at most every `min_interval` seconds, and at once when a suite run starts or ends). Anything else that writes
to the terminal meanwhile must `clear()` the block first and `redraw()` it after (or write through `suspended()`); the
block is drawn where the cursor is, so it must be at the start of a line (pytest's per-file lines end with a newline
under `-v`; without it, write a newline first).

When the output is not a terminal (a CI log), nothing is redrawn: plain lines are written instead, when a suite run
starts, each time it passes another tenth of its cases (every case for a run of at most `PLAIN_EVERY_CASE` cases), at
most every `plain_interval` seconds in between, and when it ends, so a log shows progress without a line per case.

The class is standalone (no pytest): the session creates one with the terminal's stream and calls `start`,
`case_done` and `finish` from the scheduler.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TextIO

__all__ = ('PLAIN_EVERY_CASE', 'RunProgress', 'SuiteRunProgress')

PLAIN_EVERY_CASE = 20
"""A suite run of at most this many cases gets a plain line per case; a larger one a line per tenth of its cases."""
_FAILING = frozenset({'failed', 'error'})


@dataclass
class RunProgress:
    """The counts of one suite run."""

    run_id: str
    total: int
    done: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    reported_tenth: int = 0
    """The last tenth of the cases a plain line was written for."""
    reported_at: float = 0.0

    def text(self) -> str:
        failures = f'{self.failed} failed' if self.failed else 'no failures'
        return f'{self.run_id}: {self.done}/{self.total} cases done · {failures} · ${self.cost_usd:.4f} spent'


class SuiteRunProgress:
    """Progress lines of the suite runs that are running (see the module's docstring)."""

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        width: int | None = None,
        min_interval: float = 0.1,
        plain_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        out: Where to write (the terminal reporter's stream).
        tty: Whether `out` is a terminal; by default `out.isatty()`.
        width: The terminal's width, lines are cut to it; by default the size of the terminal.
        min_interval: On a terminal, the least time between two redraws of the block for finished cases.
        plain_interval: Off a terminal, a line is also written when this many seconds passed since the run's last.
        clock: Seconds, monotonic (tests pass their own).
        """
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._width = width
        self._min_interval = min_interval
        self._plain_interval = plain_interval
        self._clock = clock
        self._runs: dict[str, RunProgress] = {}
        self._drawn = 0  # lines of the block now on the terminal
        self._drawn_at = float('-inf')

    @property
    def running(self) -> list[RunProgress]:
        """The suite runs started and not finished, in the order they started."""
        return list(self._runs.values())

    def start(self, run_id: str, total: int) -> None:
        """A suite run of `total` cases starts."""
        run = RunProgress(run_id, total, reported_at=self._clock())
        self._runs[run_id] = run
        if self._tty:
            self._draw(force=True)
        else:
            self._line(f'{run_id}: started, {total} case(s)')

    def case_done(self, run_id: str, status: str, cost_usd: float = 0.0) -> None:
        """A case of `run_id` finished with `status` (`passed`, `failed`, `error`, `skipped`, ...) and cost."""
        run = self._runs.get(run_id)
        if run is None:
            return  # a late report of a run already finished, or never started: nothing to show
        run.done += 1
        run.failed += status in _FAILING
        run.cost_usd += cost_usd
        if self._tty:
            self._draw(force=False)
            return
        now = self._clock()
        tenth = run.done * 10 // max(run.total, 1)
        due = (
            run.total <= PLAIN_EVERY_CASE or tenth > run.reported_tenth or now - run.reported_at >= self._plain_interval
        )
        if due and run.done < run.total:  # the last case's line is `finish`'s
            run.reported_tenth, run.reported_at = tenth, now
            self._line(run.text())

    def finish(self, run_id: str) -> None:
        """A suite run ended (all its cases done, or cancelled): its last line stays in the output."""
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        line = run.text() + ('' if run.done == run.total else f' · {run.total - run.done} not run')
        if self._tty:
            self.clear()
            self._write(self._cut(line) + '\n')
            self._draw(force=True)
        else:
            self._line(line)

    def clear(self) -> None:
        """Erase the live block (on a terminal), before something else is written."""
        if self._tty and self._drawn:
            # The cursor is on the block's last line: to the start of its first line, then erase to the end of the screen.
            self._write(f'\x1b[{self._drawn - 1}F\x1b[J' if self._drawn > 1 else '\r\x1b[J')
            self._drawn = 0

    def redraw(self) -> None:
        """Draw the live block again (on a terminal), after something else was written."""
        self._draw(force=True)

    @contextlib.contextmanager
    def suspended(self) -> Generator[None]:
        """Write other output inside this block: the live lines are cleared first and drawn again after."""
        self.clear()
        try:
            yield
        finally:
            self.redraw()

    def close(self) -> None:
        """Erase the live block for good (the session's summary follows)."""
        self.clear()
        self._runs.clear()

    def _draw(self, *, force: bool) -> None:
        if not self._tty:
            return
        now = self._clock()
        if not force and now - self._drawn_at < self._min_interval:
            return
        self.clear()
        lines = [self._cut(run.text()) for run in self._runs.values()]
        if lines:
            # No newline after the last line: the cursor stays on it, so `clear` knows where the block starts.
            self._write('\n'.join(lines))
        self._drawn = len(lines)
        self._drawn_at = now

    def _cut(self, line: str) -> str:
        width = self._width or shutil.get_terminal_size((100, 24)).columns
        return line if len(line) < width else line[: max(width - 2, 1)] + '…'

    def _line(self, text: str) -> None:
        self._write(f'evaltrace: {text}\n')

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()
