"""What a case prints never reaches the terminal unscrubbed, even while pytest's capture is suspended: the routed
streams (pure, text in and text out), then the plugin from outside.

Cases run on the scheduler's thread while pytest's main thread walks the items. Between an item's phases (and while
the progress lines are written) pytest's capture is suspended, and `sys.stdout` is the stream pytest found when it
started: a case printing then wrote straight to the terminal. The module below keeps a case printing a secret for the
whole time 150 plain tests go through their phases, so every such window is hit.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import re
import sys
import threading
from collections.abc import Callable

import pytest

from evaltrace.safety.streams import (
    KEPT_CHARS,
    SECTION_NOTE,
    OutputRouting,
    RoutedStream,
    install_routing,
    mark_case,
)
from tests.support.eval_project import EvalProject

SECRET = 'Sup3rS3cretDbPass'
CASE = 'evals/test_x.py::test_x[c]'


def scrub(text: str) -> str:
    return text.replace(SECRET, '[Scrubbed]')


def in_thread(fn: Callable[[], object], case: str | None = None) -> None:
    """Run `fn` in a thread of its own, as the case `case` (a context marked for it), and wait for it."""
    context = contextvars.copy_context()
    if case is not None:
        mark_case(context, case)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            context.run(fn)
        except BaseException as e:  # an assertion in the thread fails the test
            raised.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]


def routed(*, live: bool = False, armed: bool = True) -> tuple[RoutedStream, io.StringIO]:
    target = io.StringIO()
    stream = RoutedStream(target, threading.get_ident(), live=live)
    if armed:
        stream.arm(scrub)
    return stream, target


def test_pytests_own_thread_writes_through_untouched() -> None:
    """pytest's thread writes the terminal (already scrubbed reports, progress dots): nothing is held back."""
    stream, target = routed()
    stream.write('evals/test_x.py ')
    stream.write('.')
    assert target.getvalue() == 'evals/test_x.py .'


def test_before_cases_run_every_thread_writes_through() -> None:
    """Not armed (no eval case scheduled: a plain pytest session): the streams change nothing."""
    stream, target = routed(armed=False)
    in_thread(lambda: stream.write(f'{SECRET}'), case=CASE)
    assert target.getvalue() == SECRET


def test_a_cases_writes_are_kept_for_its_report_scrubbed() -> None:
    stream, target = routed()
    routing = OutputRouting(stream, None)

    def case() -> None:
        print('connecting with password', SECRET, file=stream)
        print('a second line', file=stream)

    in_thread(case, case=CASE)
    assert target.getvalue() == ''  # not to the terminal
    assert routing.sections('evals/test_x.py::test_x[other]', 'call') == []
    assert routing.sections(CASE, 'call') == [
        (f'Captured stdout call ({SECTION_NOTE})', 'connecting with password [Scrubbed]\na second line\n')
    ]
    assert routing.sections(CASE, 'teardown') == []  # taken once


def _kept_and_dropped(text: str) -> tuple[str, int]:
    note, _, kept = text.partition('\n')
    found = re.fullmatch(r'\[evaltrace: the first ([\d,]+) characters this case printed were not kept\]', note)
    assert found, text[:200]
    return kept, int(found[1].replace(',', ''))


def test_what_a_case_keeps_is_bounded_to_its_last_whole_lines_with_a_note_of_what_was_dropped() -> None:
    # A case that prints without end while pytest is not capturing must not hold the run's memory: its last lines,
    # at most twice KEPT_CHARS characters, are kept (the lines before a failure), with a note of how much went before.
    # Whole lines only: a secret cut in two would not be known to the scrubber.
    stream, _ = routed()
    line = f'{SECRET} ' + 'x' * 973 + '\n'
    lines = 5 * KEPT_CHARS // len(line)

    def chatty() -> None:
        for _ in range(lines):
            stream.write(line[:500])  # a line in two writes
            stream.write(line[500:])

    in_thread(chatty, case=CASE)
    kept, dropped = _kept_and_dropped(stream.take(CASE))
    assert KEPT_CHARS <= len(kept) <= 2 * KEPT_CHARS
    assert set(kept.splitlines()) == {line.replace(SECRET, '[Scrubbed]').rstrip('\n')}
    assert dropped + len(kept.replace('[Scrubbed]', SECRET)) == lines * len(line)
    assert stream.take(CASE) == ''

    def endless() -> None:
        stream.write(f'first {SECRET}\n')
        stream.write('x' * (3 * KEPT_CHARS))  # one line longer than the bound: dropped, and its end when it comes
        stream.write(f'{SECRET[-5:]} end of the long line\nlast words {SECRET}\n')

    in_thread(endless, case=CASE)
    kept, dropped = _kept_and_dropped(stream.take(CASE))
    assert kept == 'last words [Scrubbed]\n'
    assert dropped == len(f'first {SECRET}\n') + 3 * KEPT_CHARS + len(f'{SECRET[-5:]} end of the long line\n')


def test_threads_and_tasks_that_copy_a_cases_context_are_the_case() -> None:
    stream, target = routed()

    async def task() -> None:
        print('from a task', file=stream)

    async def case() -> None:
        await asyncio.to_thread(print, 'from a thread', SECRET, file=stream)
        await asyncio.create_task(task())

    in_thread(lambda: asyncio.run(case()), case=CASE)
    assert target.getvalue() == ''
    assert stream.take(CASE) == 'from a thread [Scrubbed]\nfrom a task\n'


@pytest.mark.parametrize(('live', 'case'), [(False, None), (True, CASE)], ids=['no-case', 'case-with-s'])
def test_other_threads_write_through_scrubbed_a_whole_line_at_a_time(live: bool, case: str | None) -> None:
    """A thread that belongs to no case; and with `-s` (live), a case: a secret that comes in pieces is found whole."""
    stream, target = routed(live=live)

    def chatty() -> None:
        stream.write('password ')
        stream.write(SECRET[:5])
        stream.write(SECRET[5:])
        assert target.getvalue() == ''  # no newline yet
        stream.write('\nnext ')
        assert target.getvalue() == 'password [Scrubbed]\n'
        stream.flush()  # a prompt without its newline is shown when flushed

    in_thread(chatty, case=case)
    assert target.getvalue() == 'password [Scrubbed]\nnext '
    assert stream.take(CASE) == ''  # nothing kept


def test_release_writes_what_no_report_took_and_then_passes_through() -> None:
    stream, target = routed()
    in_thread(lambda: stream.write(f'late {SECRET}'), case=CASE)
    in_thread(lambda: stream.write(f'half a line {SECRET}'))
    stream.release()
    assert target.getvalue().splitlines() == [
        f'evaltrace: {CASE} printed (no report of its item was left to show it):',
        'late [Scrubbed]',
        'half a line [Scrubbed]',
    ]
    in_thread(lambda: stream.write(f'after {SECRET}\n'), case=CASE)
    assert target.getvalue().endswith('after [Scrubbed]\n')


def test_pdb_entered_from_a_case_shows_its_output_as_it_comes() -> None:
    stream, target = routed()

    def case() -> None:
        stream.write('>>> PDB set_trace >>>\n')  # pytest's header, just before it tells evaltrace
        stream.debugger(entered=True)
        assert target.getvalue() == '>>> PDB set_trace >>>\n'
        stream.write(f'(Pdb) {SECRET}\n')
        assert target.getvalue().endswith('(Pdb) [Scrubbed]\n')
        stream.debugger(entered=False)
        stream.write('kept again\n')

    in_thread(case, case=CASE)
    assert stream.take(CASE) == 'kept again\n'


def test_install_delegates_to_the_replaced_streams_and_uninstall_puts_them_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, 'stdout', out)
    monkeypatch.setattr(sys, 'stderr', err)
    routing = install_routing(live=False)
    assert sys.stdout is routing.stdout and sys.stderr is routing.stderr
    assert routing.stdout is not None and routing.stdout.target is out
    assert sys.stdout.isatty() is False and sys.stdout.getvalue() == ''  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(io.UnsupportedOperation):
        sys.stderr.fileno()  # what the replaced stream does, it does
    routing.arm(scrub)
    in_thread(lambda: print(SECRET, file=sys.stderr), case=CASE)
    routing.uninstall()
    assert sys.stdout is out and sys.stderr is err
    assert err.getvalue().endswith('[Scrubbed]\n') and SECRET not in err.getvalue()  # released at the end


CHATTY = """
import asyncio
import os
import time
from pathlib import Path

import pytest
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected

import evaltrace

STOP = Path(__file__).parent / 'stop'


@evaltrace.suite(Dataset(name='quick', cases=[Case(name='q', inputs=1)]))
async def test_quick(inputs: int) -> int:
    return inputs  # the first eval item: every suite run starts here, the chatty one with it


@pytest.mark.parametrize('n', range(150))
def test_plain(n: int) -> None:
    time.sleep(0.002)


def test_stop() -> None:
    STOP.write_text('')


@evaltrace.suite(Dataset(name='chatty', cases=[Case(name='c', inputs=1, expected_output=2)], evaluators=[EqualsExpected()]))
async def test_chatty(inputs: int) -> int:
    deadline = time.monotonic() + 30
    while not STOP.exists() and time.monotonic() < deadline:
        print('connecting with password', os.environ['DB_PASSWORD'])
        await asyncio.sleep(0.0005)
    print('chatty done with password', os.environ['DB_PASSWORD'])
    return inputs  # not the expected 2: the case fails, and its failure shows what it printed
"""


# Which streams the process ends with: pytest's capture puts back the routed ones when it stops, and evaltrace then
# the ones it replaced.
AT_EXIT = """
import atexit
import sys

atexit.register(lambda: sys.__stdout__.write(f'streams at exit: {type(sys.stdout).__name__} {type(sys.stderr).__name__}\\n'))
"""


def _run_chatty(project: EvalProject, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """The chatty project run with `args`: its outcomes, and no raw secret anywhere in the terminal."""
    project.write('evals/test_chatty.py', CHATTY)
    project.write('conftest.py', AT_EXIT)
    monkeypatch.setenv('DB_PASSWORD', SECRET)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', *args)
    result.assert_outcomes(passed=152, failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert SECRET not in terminal, f'{terminal.count(SECRET)} raw lines'
    return result


def test_a_chatty_case_leaks_nothing_between_pytests_captures(
    project: EvalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The raw secret never reaches the terminal; what the case printed is shown, scrubbed, with its failure."""
    result = _run_chatty(project, monkeypatch, '-rA')
    terminal = result.stdout.str() + result.stderr.str()
    assert 'connecting with password [Scrubbed]' in terminal
    failure = terminal.split('= FAILURES =', 1)[1].split('= PASSES =', 1)[0]
    assert f'Captured stdout call ({SECTION_NOTE})' in failure
    result.stdout.fnmatch_lines(['streams at exit: TextIOWrapper TextIOWrapper'])
    assert 'connecting with password [Scrubbed]' in failure.split(SECTION_NOTE, 1)[1]


def test_a_chatty_case_leaks_nothing_quietly(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `-rA`, with `-q` and no progress lines (the trial leaked in each of these runs): nothing raw either."""
    _run_chatty(project, monkeypatch, '-q', '--evaltrace-progress=off')


def test_with_capture_off_a_case_prints_to_the_terminal_scrubbed(
    project: EvalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-s`: what the case prints is shown as it runs, one whole line at a time, scrubbed."""
    result = _run_chatty(project, monkeypatch, '-s')
    # Whole lines, though print writes its text and its newline apart (pytest's progress dots may come before).
    printed = [line for line in result.stdout.lines if 'with password' in line]
    assert len(printed) > 100
    assert all(line.endswith('with password [Scrubbed]') for line in printed), printed
    assert printed[-1].endswith('chatty done with password [Scrubbed]')


DEBUGGED = """
import os

from pydantic_evals import Case, Dataset

import evaltrace


@evaltrace.suite(Dataset(name='d', cases=[Case(name='a', inputs=1)]))
async def test_debugged(inputs: int) -> int:
    x = 41 + inputs
    breakpoint()
    return x
"""


def test_breakpoint_in_a_case_talks_to_the_terminal(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """pdb entered from a case writes from the case's thread: shown as it comes (scrubbed), not kept for a report."""
    project.write('evals/test_debugged.py', DEBUGGED)
    monkeypatch.setenv('DB_PASSWORD', SECRET)
    stdin = b"p x * 1000\np os.environ['DB_PASSWORD']\nc\n"
    result = project.pytester.run(sys.executable, '-m', 'pytest', 'evals', '-p', 'no:cacheprovider', stdin=stdin)
    result.assert_outcomes(passed=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert SECRET not in terminal
    result.stdout.fnmatch_lines(['*PDB set_trace*', '(Pdb) 42000', "(Pdb) '[[]Scrubbed[]]'", '*PDB continue*'])


LOGGING = """
import logging
import os

from pydantic_evals import Case, Dataset

import evaltrace


@evaltrace.suite(Dataset(name='d', cases=[Case(name=f'c{i}', inputs=i) for i in range(2)]))
async def test_logging(inputs: int) -> int:
    logging.getLogger('app').warning('connecting with password %s', os.environ['DB_PASSWORD'])
    return inputs
"""


def test_live_logs_of_a_case_are_shown_scrubbed(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """`log_cli`: pytest's live-log handler writes a case's records from the case's thread, as they come, scrubbed."""
    project.write('evals/test_logging.py', LOGGING)
    monkeypatch.setenv('DB_PASSWORD', SECRET)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '-o', 'log_cli=true')
    result.assert_outcomes(passed=2)
    terminal = result.stdout.str() + result.stderr.str()
    assert SECRET not in terminal
    result.stdout.fnmatch_lines(['*live log call*', 'WARNING * connecting with password [[]Scrubbed[]]'])


def test_a_run_without_pytests_logging_plugin_runs_its_cases(project: EvalProject, upper_cases: object) -> None:
    # The progress view read the `log_cli` ini option, which only pytest's logging plugin declares: collection
    # crashed under `-p no:logging`.
    project.dataset('words', upper_cases(2), ['EqualsExpected'])  # type: ignore[operator]
    project.write('evals/test_words.py', WORDS_SUITE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-p', 'no:logging')
    result.assert_outcomes(passed=2)
    assert result.ret == 0


WORDS_SUITE = """
import evaltrace

@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    return inputs.upper()
"""
