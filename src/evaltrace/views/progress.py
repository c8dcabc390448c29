"""Progress of the running suite runs: cases done of total, failures so far, spend so far.

Two ways to show it, both written only when the caller says so (`update`, at moments when nothing else writes):

* **Live**, on a terminal: one line per running suite run, in a block drawn *below* the line pytest is writing, the
  cursor put back where pytest left it. Text pytest adds to its line does not touch the block; anything that may end
  the line (a report, a new file's path) must come after `hide()`, and `update()` draws the block again after it.
  A suite run that completes is drawn complete once, then leaves the block. The block is bounded (`max_lines`).
* **Plain**, in a CI log: no redrawing, no control characters. One line per suite run when it ends, and, while it
  runs, one at most every `plain_interval` seconds if it moved. `close()` ends with a line for each suite run that
  did not finish (`-x`, Ctrl-C), saying how many of its cases never ran.

The class is standalone (no pytest): see `views.progress_view` for when the plugin feeds it and lets it write.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ('RunProgress', 'SuiteRunProgress')

_FAILING = frozenset({'failed', 'error'})


@dataclass
class RunProgress:
    """The counts of one suite run."""

    run_id: str
    total: int
    done: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    reported_at: float = 0.0
    """When a plain line was last written for it (or when it started)."""
    reported_done: int = 0

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    def text(self) -> str:
        failures = f'{self.failed} failed' if self.failed else 'no failures'
        return f'{self.run_id}: {self.done}/{self.total} cases done · {failures} · ${self.cost_usd:.6f} spent'


class SuiteRunProgress:
    """Progress lines of the suite runs that are running (see the module's docstring)."""

    def __init__(
        self,
        write: Callable[[str], None],
        write_line: Callable[[str], None],
        *,
        live: bool,
        column: Callable[[], int] = lambda: 0,
        width: int | None = None,
        min_interval: float = 0.1,
        plain_interval: float = 30.0,
        max_lines: int = 6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        write: Writes raw text where the cursor is (live), flushed.
        write_line: Writes a line of its own, after a newline if the current line is not empty (plain).
        live: Redraw a block in place (a terminal), or write plain lines (a log).
        column: The cursor's column on the line pytest is writing (live).
        width: The terminal's width, lines are cut to fit it; by default the size of the terminal.
        min_interval: Live, the least time between two redraws of a block on screen whose counts changed.
        plain_interval: Plain, the least time between two lines of a suite run that is still running.
        max_lines: Live, the most lines of the block; the rest are counted in its last line.
        clock: Seconds, monotonic (tests pass their own).
        """
        self._write = write
        self._write_line = write_line
        self._live = live
        self._column = column
        self._width = width
        self._min_interval = min_interval
        self._plain_interval = plain_interval
        self._max_lines = max(max_lines, 2)
        self._clock = clock
        self._runs: dict[str, RunProgress] = {}
        self._drawn = 0  # lines of the block now on the screen, below the cursor
        self._drawn_at = float('-inf')
        self._changed = False
        self._closed = False
        # Kept so that `due()`, asked around every item pytest reports, is O(1) however many suite runs are running.
        self._completed = 0
        self._next_quiet_check = float('inf')

    @property
    def live(self) -> bool:
        return self._live

    @property
    def running(self) -> list[RunProgress]:
        """The suite runs shown, in the order they started."""
        return list(self._runs.values())

    def start(self, run_id: str, cases: int) -> None:
        """`cases` more cases of `run_id` were scheduled (a suite run starts with all of its own)."""
        if self._closed:
            return
        run = self._runs.get(run_id)
        if run is None:
            now = self._clock()
            self._runs[run_id] = RunProgress(run_id, cases, reported_at=now)
            self._next_quiet_check = min(self._next_quiet_check, now + self._plain_interval)
        else:
            self._completed -= run.complete
            run.total += cases
        self._completed += run is not None and run.complete
        self._changed = True

    def case_done(self, run_id: str, status: str, cost_usd: float = 0.0) -> None:
        """A case of `run_id` finished with `status` (`passed`, `failed`, `error`, ...) and cost. Writes nothing."""
        run = self._runs.get(run_id)
        if run is None:
            return  # a run not started (re-scoring), or already ended: nothing to show
        run.done += 1
        run.failed += status in _FAILING
        run.cost_usd += cost_usd
        self._completed += run.done == run.total
        self._changed = True

    def due(self) -> bool:
        """Whether `update()` would write now (the caller may have to make writing safe first)."""
        if self._closed or not self._runs:
            return False
        if self._completed:
            return True
        if self._live:
            return not self._drawn or (self._changed and self._clock() - self._drawn_at >= self._min_interval)
        return self._clock() >= self._next_quiet_check

    def update(self) -> None:
        """Write what is due: redraw the block (live), or the plain lines of runs that ended or went quiet."""
        if not self.due():
            return
        if self._live:
            self._draw()
            return
        now = self._clock()
        for run in list(self._runs.values()):
            if run.complete:
                del self._runs[run.run_id]
                self._write_line(f'evaltrace: {run.text()}')
            elif self._quiet_too_long(run, now):
                run.reported_at, run.reported_done = now, run.done
                self._write_line(f'evaltrace: {run.text()}')
        self._completed = 0
        # A run that did not move keeps its old time: it is looked at again (cheaply) at the next interval.
        soonest = min((run.reported_at for run in self._runs.values()), default=float('inf'))
        self._next_quiet_check = max(soonest, now) + self._plain_interval if self._runs else float('inf')

    def hide(self) -> None:
        """Erase the block (live), before something else is written."""
        if self._drawn:
            self._write('\x1b[J')  # the cursor is on pytest's line: erase from it to the end of the screen
            self._drawn = 0

    def close(self) -> None:
        """The session's scheduling ended: erase the block, or write a line for each suite run that did not end."""
        if self._closed:
            return
        if self._live:
            self.hide()
        else:
            for run in self._runs.values():
                self._write_line(f'evaltrace: {run.text()} · {run.total - run.done} not run')
        self._runs.clear()
        self._closed = True

    def _quiet_too_long(self, run: RunProgress, now: float) -> bool:
        return run.done > run.reported_done and now - run.reported_at >= self._plain_interval

    def _draw(self) -> None:
        runs = list(self._runs.values())
        if len(runs) > self._max_lines:
            shown = self._max_lines - 1
            lines = [self._cut(run.text()) for run in runs[:shown]]
            lines.append(self._cut(f'… and {len(runs) - shown} more suite runs running'))
        else:
            lines = [self._cut(run.text()) for run in runs]
        column = self._column() % self._width_now()
        # Below the cursor's line, then back up to the cursor: pytest writes on as if the block were not there.
        text = ('\x1b[J' if self._drawn else '') + '\n' + '\n'.join(lines) + f'\x1b[{len(lines)}F'
        self._write(text + (f'\x1b[{column}C' if column else ''))
        self._drawn, self._drawn_at, self._changed = len(lines), self._clock(), False
        if self._completed:
            for run in runs:
                if run.complete:  # drawn complete once: it leaves the block at the next redraw
                    del self._runs[run.run_id]
            self._completed = 0

    def _width_now(self) -> int:
        return self._width or shutil.get_terminal_size((80, 24)).columns  # pytest's own fallback

    def _cut(self, line: str) -> str:
        width = self._width_now()
        return line if len(line) < width else line[: max(width - 2, 1)] + '…'
