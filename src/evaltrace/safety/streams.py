"""What cases print, kept off the terminal until it is scrubbed.

Cases run on the scheduler's thread while pytest's main thread walks the items (see `schedule.scheduler`). While
pytest captures an item, what a case prints lands in that item's captured output, which the session scrubs
(`EvalSession.scrub_report`). But between an item's phases, and while the progress lines are written, pytest's capture
is suspended: `sys.stdout` is then the stream pytest found when it started capturing, and a case's `print` went
straight to the terminal, secrets and all.

So `sys.stdout` and `sys.stderr` become a `RoutedStream` each before pytest starts capturing (the plugin's
`pytest_load_initial_conftests`): pytest saves them, and puts them back every time it suspends its capture. A routed
stream passes the writes of pytest's own thread through untouched. Once an eval session runs its scheduler (`arm`),
a write from any other thread is

- kept for its case when it comes from one (a context variable set in each case's context, which the case's tasks and
  `asyncio.to_thread` copy), and added to the case's item report, scrubbed (`sections`);
- scrubbed and passed through a whole line at a time otherwise: when the user asked to see output as it comes (`-s`,
  `--capture=tee-sys`, live logs: see `shown_as_it_comes`), while pdb runs (`breakpoint()` in a case), for threads
  that belong to no case, and for a case whose item has no report left to carry it (`release`). Whole lines,
  because `print` writes its text and its newline apart, and a secret may come in pieces.

Writes to the file descriptors themselves (`os.write(1, ...)`, a subprocess's output, `sys.stdout.buffer`) do not pass
through here.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

__all__ = (
    'KEPT_CHARS',
    'ROUTING_KEY',
    'SECTION_NOTE',
    'OutputRouting',
    'RoutedStream',
    'install_routing',
    'mark_case',
    'shown_as_it_comes',
)

ROUTING_KEY = pytest.StashKey['OutputRouting']()

_CASE: contextvars.ContextVar[str | None] = contextvars.ContextVar('evaltrace_case_output', default=None)
"""The node id of the case whose code runs in this context: what it prints is kept for that item's report."""

KEPT_CHARS = 1_000_000
"""The most a case's kept output holds: its last characters (the lines before a failure), with a note of the rest."""

SECTION_NOTE = "printed by the case outside pytest's capture"
"""How a report section of kept output is told from pytest's own (`Captured stdout call (...)`)."""


def mark_case(context: contextvars.Context, nodeid: str) -> None:
    """What is printed in `context` (and in the tasks and threads that copy it) is the case of `nodeid`'s."""
    context.run(_CASE.set, nodeid)


class _Text(Protocol):
    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


class _Kept:
    """What one case printed, waiting for its report: its last lines, about `KEPT_CHARS` characters, and how many
    characters went before them.

    Only whole lines are dropped, so a secret is never cut in two halves that the scrubber would no longer know.
    Dropping waits until twice the bound is held, so a case that prints without end costs a join now and then, not
    one per write.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.chars = 0
        self.dropped = 0
        self.mid_line = False
        """The line being written was dropped in part: the rest of it is dropped too."""

    def add(self, text: str) -> None:
        if self.mid_line:
            head, newline, text = text.partition('\n')
            self.dropped += len(head) + len(newline)
            self.mid_line = not newline
        self.texts.append(text)
        self.chars += len(text)
        if self.chars > 2 * KEPT_CHARS:
            whole = ''.join(self.texts)
            end = whole.find('\n', len(whole) - KEPT_CHARS - 1)
            cut = len(whole) if end < 0 else end + 1
            self.mid_line = end < 0
            self.texts = [whole[cut:]]
            self.chars = len(whole) - cut
            self.dropped += cut

    def text(self) -> str:
        note = f'[evaltrace: the first {self.dropped:,} characters this case printed were not kept]\n'
        return (note if self.dropped else '') + ''.join(self.texts)


def _partial_key(case: object) -> tuple[str, object]:
    """Whose unfinished line a write continues: its case's, or outside any case its thread's."""
    return ('case', case) if case is not None else ('thread', threading.get_ident())


class RoutedStream:
    """Stands in for `sys.stdout` or `sys.stderr`: writes are routed (see the module docstring), and every other
    attribute (`isatty`, `fileno`, `encoding`, `buffer`...) is the replaced stream's."""

    def __init__(self, target: _Text, owner: int, *, live: bool) -> None:
        self.target = target
        self._owner = owner
        """pytest's thread: its writes are pytest's own (the terminal reporter, what pytest shows), or captured."""
        self._live = live
        self._debugging = 0
        """pdb runs, entered from a case (`breakpoint()`): the terminal is the user's, as with `-s`."""
        self._scrub: Callable[[str], str] | None = None
        self._lock = threading.RLock()
        self._kept: dict[str, _Kept] = {}
        self._partial: dict[tuple[str, object], str] = {}

    def __getattr__(self, name: str) -> Any:
        target = self.__dict__.get('target')  # none yet while a copy is made: no endless recursion
        if target is None:
            raise AttributeError(name)
        return getattr(target, name)

    def arm(self, scrub: Callable[[str], str]) -> None:
        """Route the writes of other threads from now on, scrubbed with `scrub`."""
        self._scrub = scrub

    def write(self, text: str) -> int:
        scrub = self._scrub
        if scrub is None or threading.get_ident() == self._owner:
            return self.target.write(text)
        case = _CASE.get()
        with self._lock:
            if case is not None and not (self._live or self._debugging):
                kept = self._kept.get(case)
                if kept is None:
                    kept = self._kept[case] = _Kept()
                kept.add(text)
                return len(text)
            key = _partial_key(case)
            done, newline, rest = (self._partial.pop(key, '') + text).rpartition('\n')
            if rest:
                self._partial[key] = rest
            if newline:
                self.target.write(scrub(done + newline))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        scrub = self._scrub
        if scrub is not None and threading.get_ident() != self._owner:
            with self._lock:
                partial = self._partial.pop(_partial_key(_CASE.get()), '')
                if partial:  # a prompt, a progress dot: shown when its writer flushes, as a terminal would
                    self.target.write(scrub(partial))
        self.target.flush()

    def debugger(self, *, entered: bool) -> None:
        """pdb was entered or left (pytest suspends its capture for it). While it runs, what is printed is shown as
        it comes, scrubbed; on entering, what the case that entered printed so far goes first (pytest's header
        among it, written just before)."""
        scrub = self._scrub
        case = _CASE.get()
        with self._lock:
            self._debugging = self._debugging + 1 if entered else max(0, self._debugging - 1)
            kept = self._kept.pop(case, None) if entered and case is not None else None
            if kept and scrub is not None:
                self.target.write(scrub(kept.text()))
        self.target.flush()

    def take(self, nodeid: str) -> str:
        """What the case of `nodeid` printed and was kept since the last `take`, scrubbed ('' for nothing)."""
        with self._lock:
            kept = self._kept.pop(nodeid, None)
        if not kept or self._scrub is None:
            return ''
        return self._scrub(kept.text())

    def release(self) -> None:
        """Write what is kept or partial, scrubbed; from now on a case's writes are passed through, not kept."""
        scrub = self._scrub
        with self._lock:
            self._live = True
            kept, self._kept = self._kept, {}
            partial, self._partial = self._partial, {}
            if scrub is None:
                return
            for nodeid, held in kept.items():
                text = held.text()
                self.target.write(scrub(f'evaltrace: {nodeid} printed (no report of its item was left to show it):\n'))
                self.target.write(scrub(text if text.endswith('\n') else text + '\n'))
            for text in partial.values():
                self.target.write(scrub(text + '\n'))
        self.target.flush()


@dataclass(frozen=True)
class OutputRouting:
    """The routed `sys.stdout` and `sys.stderr` of one pytest session (None: the stream was None, left as it was)."""

    stdout: RoutedStream | None
    stderr: RoutedStream | None

    def _streams(self) -> list[tuple[str, RoutedStream]]:
        return [(name, s) for name, s in (('stdout', self.stdout), ('stderr', self.stderr)) if s is not None]

    def arm(self, scrub: Callable[[str], str]) -> None:
        """Cases are about to run: from now on, what other threads print is kept or scrubbed."""
        for _, stream in self._streams():
            stream.arm(scrub)

    def debugger(self, *, entered: bool) -> None:
        """pdb was entered or left, from the calling thread (see `RoutedStream.debugger`)."""
        for _, stream in self._streams():
            stream.debugger(entered=entered)

    def sections(self, nodeid: str, when: str) -> list[tuple[str, str]]:
        """Report sections of what the case of `nodeid` printed outside pytest's capture, scrubbed."""
        out: list[tuple[str, str]] = []
        for name, stream in self._streams():
            text = stream.take(nodeid)
            if text:
                out.append((f'Captured {name} {when} ({SECTION_NOTE})', text))
        return out

    def release(self) -> None:
        """No item will report what is kept any more: write it to the terminal, scrubbed."""
        for _, stream in self._streams():
            stream.release()

    def uninstall(self) -> None:
        """Put the replaced streams back (unless someone replaced ours since); a stream still held by someone (a
        terminal writer, a logging handler) keeps writing through, scrubbing what other threads write."""
        self.release()
        for name, stream in self._streams():
            if getattr(sys, name) is stream:
                setattr(sys, name, stream.target)


def shown_as_it_comes(config: pytest.Config) -> bool:
    """Whether the user asked to see output as it comes, not in reports: no capture (`-s`), `--capture=tee-sys`, or
    live logs (pytest's live-log handler writes a case's records from the case's thread, through its terminal
    writer, whose stream is a routed one)."""
    if getattr(config.known_args_namespace, 'capture', 'no') in ('no', 'tee-sys'):
        return True
    if getattr(config.known_args_namespace, 'log_cli_level', None) is not None:
        return True
    try:
        return bool(config.getini('log_cli'))
    except (ValueError, KeyError):  # pytest's logging plugin is disabled (`-p no:logging`)
        return False


def install_routing(*, live: bool) -> OutputRouting:
    """Make `sys.stdout` and `sys.stderr` routed streams, whose writes from threads other than this one are routed
    once armed. `live`: output is to be shown as it comes (`shown_as_it_comes`), not kept for reports."""
    owner = threading.get_ident()

    def routed(name: str) -> RoutedStream | None:
        current = getattr(sys, name)
        if current is None:  # no console (pythonw): nothing to route
            return None
        stream = RoutedStream(current, owner, live=live)
        setattr(sys, name, stream)
        return stream

    return OutputRouting(routed('stdout'), routed('stderr'))
