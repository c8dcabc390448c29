"""The live progress lines of running suite runs: the pure class (text in, text out), then the plugin from outside."""

from __future__ import annotations

import re
from typing import Any

import pytest

from evaltrace.views.progress import SuiteRunProgress
from tests.support.eval_project import EvalProject

A = 'evals/test_x.py::test_x[True]'
B = 'evals/test_x.py::test_x[False]'


class Screen:
    """A terminal reduced to the controls the progress lines use (CR, LF, ESC[nF, ESC[nC, ESC[J) and the colours."""

    def __init__(self) -> None:
        self.lines: list[str] = ['']
        self.row = 0
        self.col = 0

    def write(self, text: str) -> None:
        text = re.sub(r'\x1b\[[\d;]*m', '', text)  # colours change nothing here
        for count, code, cr, lf, chars in re.findall(r'\x1b\[(\d*)([FCJ])|(\r)|(\n)|([^\x1b\r\n]+)', text):
            if code == 'F':
                self.row, self.col = self.row - int(count or 1), 0
                assert self.row >= 0, 'the cursor went above the first line'
            elif code == 'C':
                self.col += int(count or 1)
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
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + chars + line[self.col + len(chars) :]
                self.col += len(chars)

    def write_line(self, text: str) -> None:
        """What pytest's `TerminalReporter.write_line` does: a new line if the current one is not empty."""
        if self.lines[self.row]:
            self.write('\n')
        self.write(text + '\n')


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _live(screen: Screen, clock: Clock, width: int = 200, max_lines: int = 6) -> SuiteRunProgress:
    return SuiteRunProgress(
        screen.write, screen.write_line, live=True, column=lambda: screen.col, width=width,
        min_interval=0.1, max_lines=max_lines, clock=clock,
    )  # fmt: skip


def _plain(screen: Screen, clock: Clock) -> SuiteRunProgress:
    return SuiteRunProgress(screen.write, screen.write_line, live=False, plain_interval=30, clock=clock)


def test_a_terminal_shows_the_block_below_pytest_line_and_pytest_writes_on_as_if_it_were_not_there() -> None:
    screen, clock = Screen(), Clock()
    progress = _live(screen, clock)
    screen.write('evals/test_x.py ..')
    progress.start(A, 3)
    progress.start(B, 2)
    progress.case_done(A, 'passed', 0.01)
    progress.case_done(A, 'failed', 0.02)
    progress.case_done(B, 'error', 0.5)
    assert progress.due()
    progress.update()
    assert screen.lines == [
        'evals/test_x.py ..',
        f'{A}: 2/3 cases done · 1 failed · $0.030000 spent',
        f'{B}: 1/2 cases done · 1 failed · $0.500000 spent',
    ]
    assert (screen.row, screen.col) == (0, len('evals/test_x.py ..'))  # the cursor is back where pytest left it
    assert not progress.due()  # nothing changed since
    progress.hide()  # before pytest writes
    screen.write('.F' + ' [100%]\n')
    progress.update()  # after: drawn again at once below pytest's new line, the counts unchanged
    assert screen.lines == [
        'evals/test_x.py ...F [100%]',
        '',
        f'{A}: 2/3 cases done · 1 failed · $0.030000 spent',
        f'{B}: 1/2 cases done · 1 failed · $0.500000 spent',
    ]
    progress.close()
    assert screen.lines == ['evals/test_x.py ...F [100%]', '']


def test_a_terminal_redraws_at_most_every_min_interval_and_lines_fit_its_width() -> None:
    screen, clock = Screen(), Clock()
    writes: list[str] = []

    def write(text: str) -> None:
        writes.append(text)
        screen.write(text)

    progress = SuiteRunProgress(write, screen.write_line, live=True, column=lambda: screen.col, width=40, clock=clock)
    progress.start(A, 100)
    progress.update()
    for _ in range(50):  # fifty cases in the same instant: no redraw for each
        progress.case_done(A, 'passed')
        if progress.due():
            progress.update()
    assert sum('/100 c' in w for w in writes) == 1
    clock.now = 0.2
    progress.case_done(A, 'passed')
    assert progress.due()
    progress.update()
    assert screen.lines[-1] == f'{A}: 51/100 c'[:38] + '…'
    assert all(len(line) < 40 for line in screen.lines)


def test_a_finished_suite_run_is_drawn_complete_once_then_leaves_the_block() -> None:
    screen, clock = Screen(), Clock()
    progress = _live(screen, clock)
    progress.start(A, 2)
    progress.start(B, 5)
    progress.update()
    progress.case_done(A, 'passed', 0.1)
    progress.case_done(A, 'passed', 0.1)
    assert progress.due()  # a completed run is drawn at once, whatever the interval
    progress.update()
    assert screen.lines[1:] == [
        f'{A}: 2/2 cases done · no failures · $0.200000 spent',
        f'{B}: 0/5 cases done · no failures · $0.000000 spent',
    ]
    progress.hide()
    progress.update()
    assert screen.lines[1:] == [f'{B}: 0/5 cases done · no failures · $0.000000 spent']


def test_a_terminal_block_is_bounded_with_a_count_of_the_rest() -> None:
    screen, clock = Screen(), Clock()
    progress = _live(screen, clock, max_lines=3)
    for k in range(7):
        progress.start(f'evals/test_x.py::test_x[{k}]', 4)
    progress.update()
    assert screen.lines[1:] == [
        'evals/test_x.py::test_x[0]: 0/4 cases done · no failures · $0.000000 spent',
        'evals/test_x.py::test_x[1]: 0/4 cases done · no failures · $0.000000 spent',
        '… and 5 more suite runs running',
    ]


def test_a_ci_log_gets_one_line_per_suite_run_when_it_ends_not_one_per_case() -> None:
    screen, clock = Screen(), Clock()
    progress = _plain(screen, clock)
    progress.start(A, 100)
    progress.start(B, 3)
    for k in range(100):
        clock.now = k * 0.1
        progress.case_done(A, 'failed' if k < 3 else 'passed', 0.001)
        if k < 3:
            progress.case_done(B, 'passed')
        if progress.due():
            progress.update()
    progress.close()
    text = '\n'.join(screen.lines)
    assert '\x1b' not in text and '\r' not in text
    assert screen.lines == [
        f'evaltrace: {B}: 3/3 cases done · no failures · $0.000000 spent',
        f'evaltrace: {A}: 100/100 cases done · 3 failed · $0.100000 spent',
        '',
    ]


def test_a_ci_log_gets_a_line_after_a_quiet_stretch_and_is_told_what_never_ran() -> None:
    screen, clock = Screen(), Clock()
    progress = _plain(screen, clock)
    progress.start(A, 1000)
    progress.start(B, 10)
    clock.now = 29
    progress.case_done(A, 'passed')
    assert not progress.due()
    clock.now = 31
    assert progress.due()  # 30 s since it started, and it moved: a line (B did not move: none for it)
    progress.update()
    clock.now = 40
    progress.case_done(A, 'passed')
    assert not progress.due()  # the next one waits another 30 s
    progress.close()  # cancelled: -x, Ctrl-C
    progress.case_done(A, 'passed')  # a late report after the end is ignored
    progress.update()
    assert screen.lines == [
        f'evaltrace: {A}: 1/1000 cases done · no failures · $0.000000 spent',
        f'evaltrace: {A}: 2/1000 cases done · no failures · $0.000000 spent · 998 not run',
        f'evaltrace: {B}: 0/10 cases done · no failures · $0.000000 spent · 10 not run',
        '',
    ]


def test_start_adds_cases_to_a_suite_run_already_running() -> None:
    screen, clock = Screen(), Clock()
    progress = _plain(screen, clock)
    progress.start(A, 2)
    progress.start(A, 1)  # an item of the suite run that was held back (a skipif), started on its own
    for _ in range(3):
        progress.case_done(A, 'passed')
    progress.update()
    assert screen.lines[0] == f'evaltrace: {A}: 3/3 cases done · no failures · $0.000000 spent'


# ---- the plugin, from outside ----

SUITE = """
import asyncio
import os
import pytest
import evaltrace
from pydantic_ai import Agent
from helpers_models import priced_model

agent = Agent(priced_model(input_tokens=100, output_tokens=20))
finished = {True: 0, False: 0}

@pytest.mark.parametrize('shout', [True, False])
@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str, shout: bool) -> str:
    if inputs == 'word0':
        # The first item waits for this case while the others finish: waited for (up to 60 s, however loaded the
        # machine; 3 s under xdist, whose worker runs the others only after this one), then long enough for the
        # waiting item to redraw the block (it looks every 0.2 s) several times over.
        patience = float(os.environ.get('WORD0_PATIENCE_S', '60'))
        for _ in range(int(patience / 0.05)):
            if finished[shout] == 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
    try:
        result = await agent.run(inputs)
        return result.output if shout or inputs != 'word1' else 'nope'
    finally:
        finished[shout] += inputs != 'word0'
"""
RUNS = ('evals/test_words.py::test_words[True]', 'evals/test_words.py::test_words[False]')


def _project(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('words', upper_cases(4), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE)


def _expected_lines(project: EvalProject) -> set[str]:
    """The end line of each suite run, from what report.json says of its cases."""
    cases = project.report()['cases']
    lines: set[str] = set()
    for run in RUNS:
        mine = [c for c in cases if c['suite'] == run]
        failed = sum(c['status'] in ('failed', 'error') for c in mine)
        cost = sum(c['task_usage']['cost_usd'] + c['judge_usage']['cost_usd'] for c in mine)
        assert len(mine) == 4 and cost > 0
        failures = f'{failed} failed' if failed else 'no failures'
        lines.add(f'{run}: 4/4 cases done · {failures} · ${cost:.6f} spent')
    return lines


@pytest.mark.parametrize('workers', [None, '2'], ids=['serial', 'xdist'])
def test_a_ci_log_gets_one_plain_line_per_suite_run_with_its_counts_failures_and_spend(
    project: EvalProject, upper_cases: Any, workers: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(project, upper_cases)
    args = ('evals', '-p', 'no:cacheprovider')
    if workers is None:
        result = project.pytester.runpytest_inprocess(*args)
    else:  # the controller shows what the workers' reports say
        monkeypatch.setenv('WORD0_PATIENCE_S', '3')
        result = project.pytester.runpytest_subprocess(*args, '-n', workers)
    result.assert_outcomes(passed=7, failed=1)
    out = result.stdout.str()
    assert '\x1b[' not in out
    progress = [line.removeprefix('evaltrace: ') for line in result.outlines if 'cases done' in line]
    assert set(progress) == _expected_lines(project)
    assert len(progress) == 2  # one line per suite run, not one per case
    assert {c['status'] for c in project.report()['cases'] if c['suite'] == RUNS[1]} == {'passed', 'failed'}


def test_the_progress_setting_turns_it_off(project: EvalProject, upper_cases: Any) -> None:
    _project(project, upper_cases)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '--evaltrace-progress=off')
    result.assert_outcomes(passed=7, failed=1)
    assert 'cases done' not in result.stdout.str()


@pytest.mark.parametrize('verbose', [False, True], ids=['dots', 'verbose'])
def test_on_a_terminal_the_block_is_live_while_an_item_waits_and_leaves_pytest_output_intact(
    project: EvalProject, upper_cases: Any, verbose: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(project, upper_cases)
    monkeypatch.setenv('COLUMNS', '200')  # wide enough for whole lines (the block cuts its lines to the width)
    args = ('evals', '-p', 'no:cacheprovider', '--evaltrace-progress=live', *(['-v'] if verbose else []))
    result = project.pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=7, failed=1)
    raw = '\n'.join(result.outlines)
    # While the first item waits for its slow case, the block shows the cases that finished meanwhile.
    # pytest's first result comes right after the block was hidden, or right after the item's name if no block was
    # drawn while it waited (a '.' inside the block, as in '$0.000025', follows neither).
    first = re.search(r'(\x1b\[J|\.py |\] )(\x1b\[[\d;]*m)*(\.|F|PASSED|FAILED)', raw)
    assert first is not None
    waiting = raw[raw.index('evals/test_words.py') : first.start()]
    assert f'{RUNS[0]}: 3/4 cases done' in waiting  # the first item's own suite run, drawn while the item waited
    # Each suite run is drawn complete once, with its failures and spend.
    for line in _expected_lines(project):
        assert line in raw
    # Replayed on a terminal, pytest's own lines read as without the block, and the block is gone at the end.
    screen = Screen()
    screen.write(raw)
    assert not [line for line in screen.lines if 'cases done' in line]
    if verbose:
        item = r'evals/test_words\.py::test_words\[c\d-(True|False)\] (PASSED|FAILED)\s+\[\s*\d+%\]'
        assert sum(bool(re.fullmatch(item, line)) for line in screen.lines) == 8, screen.lines
    else:
        dots = r'evals/test_words\.py [.F]{8}\s+\[100%\]'
        assert any(re.fullmatch(dots, line) for line in screen.lines), screen.lines
    assert any(re.fullmatch(r'=+ 1 failed, 7 passed in [\d.]+s =+', line) for line in screen.lines)


def test_the_progress_setting_rejects_an_unknown_mode(project: EvalProject, upper_cases: Any) -> None:
    _project(project, upper_cases)
    result = project.pytester.runpytest_inprocess('evals', '--evaltrace-progress=loud')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*bad value for progress from option*expected one of auto, live, plain, off, got 'loud'*"]
    )


STOPPED = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/slow.yaml', max_concurrency=2)
async def test_slow(inputs: float) -> float:
    await asyncio.sleep(inputs)
    return inputs
"""


def test_a_ci_log_says_how_many_cases_of_a_stopped_suite_run_never_ran(project: EvalProject) -> None:
    cases = [{'name': 'bad', 'inputs': 0.0, 'expected_output': -1.0}]
    # The others would run 30 s: -x must stop the run long before any ends, however slow the machine.
    cases += [{'name': f's{i}', 'inputs': 30.0, 'expected_output': 30.0} for i in range(5)]
    project.dataset('slow', cases, ['EqualsExpected'])
    project.write('evals/test_slow.py', STOPPED)
    result = project.pytester.runpytest_inprocess('evals', '-x', '-p', 'no:cacheprovider')
    result.assert_outcomes(failed=1)
    report = project.report()
    never = len(report['cancelled']) + len(report['not_started'])
    assert never == 5
    progress = [line for line in result.outlines if 'cases done' in line]
    assert progress == [
        f'evaltrace: evals/test_slow.py::test_slow: 1/6 cases done · 1 failed · $0.000000 spent · {never} not run'
    ]
