"""The live progress lines of running suite runs (pure: a stream in, text out), on a terminal and in a CI log."""

from __future__ import annotations

import io
import re

from evaltrace._progress import PLAIN_EVERY_CASE, SuiteRunProgress

A = 'evals/test_x.py::test_x[True]'
B = 'evals/test_x.py::test_x[False]'


class Screen:
    """The few terminal controls the progress lines use (CR, LF, ESC[nF, ESC[J), applied to a list of lines."""

    def __init__(self) -> None:
        self.lines: list[str] = ['']
        self.row = 0
        self.col = 0

    def feed(self, text: str) -> None:
        for token in re.findall(r'\x1b\[(\d*)([FJ])|(\r)|(\n)|([^\x1b\r\n]+)', text):
            count, code, cr, lf, chars = token
            if code == 'F':
                self.row, self.col = self.row - int(count or 1), 0
            elif code == 'J':
                self.lines[self.row] = self.lines[self.row][: self.col]
                del self.lines[self.row + 1 :]
            elif cr:
                self.col = 0
            elif lf:
                self.row, self.col = self.row + 1, 0
                if self.row == len(self.lines):
                    self.lines.append('')
            else:
                line = self.lines[self.row]
                self.lines[self.row] = line[: self.col] + chars + line[self.col + len(chars) :]
                self.col += len(chars)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tty(width: int = 200) -> tuple[SuiteRunProgress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return SuiteRunProgress(out, tty=True, width=width, min_interval=0.1, clock=clock), out, clock


def test_a_terminal_shows_one_live_line_per_running_suite_run_redrawn_in_place() -> None:
    progress, out, clock = _tty()
    progress.start(A, 3)
    progress.start(B, 2)
    clock.now = 1
    progress.case_done(A, 'passed', 0.01)
    clock.now = 2
    progress.case_done(A, 'failed', 0.02)
    clock.now = 3
    progress.case_done(B, 'error', 0.5)
    screen = Screen()
    screen.feed(out.getvalue())
    assert screen.lines == [
        f'{A}: 2/3 cases done · 1 failed · $0.0300 spent',
        f'{B}: 1/2 cases done · 1 failed · $0.5000 spent',
    ]
    # Other output goes above the block, which is drawn again below it.
    with progress.suspended():
        out.write('evals/test_x.py::test_x[True][c1] PASSED\n')
    clock.now = 4
    progress.case_done(B, 'passed', 0.0)
    progress.finish(B)  # its last line stays in the output; the block keeps the runs still running
    screen = Screen()
    screen.feed(out.getvalue())
    assert screen.lines == [
        'evals/test_x.py::test_x[True][c1] PASSED',
        f'{B}: 2/2 cases done · 1 failed · $0.5000 spent',
        f'{A}: 2/3 cases done · 1 failed · $0.0300 spent',
    ]
    progress.close()
    screen = Screen()
    screen.feed(out.getvalue())
    assert screen.lines == [
        'evals/test_x.py::test_x[True][c1] PASSED',
        f'{B}: 2/2 cases done · 1 failed · $0.5000 spent',
        '',
    ]


def test_a_terminal_is_redrawn_at_most_every_min_interval_and_lines_fit_its_width() -> None:
    progress, out, clock = _tty(width=40)
    progress.start(A, 100)
    drawn = out.getvalue().count('cases done')
    for _ in range(50):  # fifty cases in the same instant: no redraw of the block for each
        progress.case_done(A, 'passed')
    assert out.getvalue().count('cases done') == drawn
    clock.now = 0.2
    progress.case_done(A, 'passed')
    screen = Screen()
    screen.feed(out.getvalue())
    assert screen.lines == [f'{A}: 51/100 c'[:38] + '…']
    assert all(len(line) < 40 for line in screen.lines)


def test_a_ci_log_gets_plain_lines_at_each_tenth_not_one_per_case() -> None:
    out, clock = io.StringIO(), Clock()
    progress = SuiteRunProgress(out, tty=False, plain_interval=30, clock=clock)
    progress.start(A, 100)
    for k in range(100):
        clock.now = k * 0.1
        progress.case_done(A, 'failed' if k < 3 else 'passed', 0.001)
    progress.finish(A)
    lines = out.getvalue().splitlines()
    assert '\x1b' not in out.getvalue() and '\r' not in out.getvalue()
    assert lines[0] == f'evaltrace: {A}: started, 100 case(s)'
    assert lines[1] == f'evaltrace: {A}: 10/100 cases done · 3 failed · $0.0100 spent'
    assert len(lines) == 11  # started, nine tenths, and the end
    assert lines[-1] == f'evaltrace: {A}: 100/100 cases done · 3 failed · $0.1000 spent'


def test_a_ci_log_also_gets_a_line_after_a_long_quiet_stretch_and_says_what_never_ran() -> None:
    out, clock = io.StringIO(), Clock()
    progress = SuiteRunProgress(out, tty=False, plain_interval=30, clock=clock)
    progress.start(A, 1000)
    clock.now = 31
    progress.case_done(A, 'passed')  # not a tenth yet, but 31 s since the last line
    clock.now = 32
    progress.case_done(A, 'passed')
    progress.finish(A)  # cancelled: -x, Ctrl-C
    progress.case_done(A, 'passed')  # a late report after the end is ignored
    assert out.getvalue().splitlines()[1:] == [
        f'evaltrace: {A}: 1/1000 cases done · no failures · $0.0000 spent',
        f'evaltrace: {A}: 2/1000 cases done · no failures · $0.0000 spent · 998 not run',
    ]


def test_a_small_suite_run_gets_a_plain_line_per_case() -> None:
    out = io.StringIO()
    progress = SuiteRunProgress(out, tty=False)
    progress.start(A, PLAIN_EVERY_CASE)
    for _ in range(PLAIN_EVERY_CASE):
        progress.case_done(A, 'passed')
    progress.finish(A)
    assert len(out.getvalue().splitlines()) == 1 + PLAIN_EVERY_CASE
