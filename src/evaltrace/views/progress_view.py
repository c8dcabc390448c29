"""Where the progress lines (see views.progress) meet pytest: what feeds them, and the only moments they may write.

Fed from the session: a suite run starts on the main thread; its cases finish on the scheduler's thread, which only
queues them (a deque), never writes. Under xdist the controller has no scheduler: each worker's report carries the
case and the size of its suite run on that worker, and the controller counts what the reports say.

Written only on the main thread, when pytest is not writing:

* around pytest's own writes for an item (`pytest_runtest_logstart`, `_logreport`, `_logfinish`): the live block is
  hidden before pytest writes and drawn again after; plain lines hide nothing, and are written after the item's
  last write (`_logfinish`);
* while an item waits for its case (`tick`, from `schedule.scheduler.wait`), with pytest's capture suspended for the
  write, as pytest's live logging does: the block moves while a slow case holds the item.

Live (the redrawn block) when the setting is `live`, or `auto` on a terminal with markup; plain lines otherwise, and
also under `auto` when something else writes to the terminal while items run (`-s`, `log_cli`).
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import pytest

from ..safety.streams import shown_as_it_comes
from ..settings.values import ProgressMode
from .progress import SuiteRunProgress

__all__ = ('ProgressView', 'progress_view')


class ProgressView:
    """The progress lines of one pytest session (the controller's, under xdist)."""

    def __init__(self, config: pytest.Config, terminal: Any, live: bool) -> None:
        self._capture: Any = config.pluginmanager.get_plugin('capturemanager')
        writer: Any = getattr(terminal, '_tw')  # noqa: B009  (pytest keeps no public handle on the line's width)
        self._events: deque[tuple[str, str, float]] = deque()
        self._seen: set[tuple[str, str]] = set()
        self.progress = SuiteRunProgress(
            _raw_writer(writer),  # raw: pytest's idea of its line's width stays true
            lambda line: self._write_line(terminal, writer, line),
            live=live,
            column=lambda: int(writer.width_of_current_line),
        )

    # ---- fed by the session ----

    def started(self, run_id: str, cases: int) -> None:
        """On the main thread: `cases` cases of `run_id` were scheduled."""
        self.progress.start(run_id, cases)

    def finished(self, run_id: str, status: str, cost_usd: float) -> None:
        """On any thread (the scheduler's): a case ended. Queued for the main thread."""
        self._events.append((run_id, status, cost_usd))

    def reported(self, run_id: str, status: str, cost_usd: float, meta: dict[str, Any] | None) -> None:
        """On the controller under xdist: a worker reported a case; `meta` is its suite run's size on that worker."""
        if meta is None:
            return  # not from a worker: this process ran the case, and counted it when it finished
        key = (run_id, str(meta.get('worker')))
        if key not in self._seen:
            self._seen.add(key)
            self.progress.start(run_id, int(meta.get('total', 1)))
        self.progress.case_done(run_id, status, cost_usd)

    def tick(self) -> None:
        """On the main thread while an item waits for its case: update the lines if it is time."""
        self._drain()
        if self.progress.due():
            with self._capture_disabled():
                self.progress.update()

    def close(self) -> None:
        self._drain()
        self.progress.update()  # the suite runs that ended since the last report
        self.progress.close()

    def hooks(self) -> object:
        """The plugin to register with pytest: what must run around (live) or after (plain) pytest's writes."""
        return _LiveHooks(self) if self.progress.live else _PlainHooks(self)

    def after_pytest(self) -> None:
        """pytest has written for an item: write what is due."""
        self._drain()
        self.progress.update()

    @staticmethod
    def _write_line(terminal: Any, writer: Any, line: str) -> None:
        # `write_line` starts a new line only after a file's path: under xdist, pytest's dots have none.
        terminal.ensure_newline()
        if writer.width_of_current_line:
            terminal.write('\n')
        terminal.write_line(line)

    def _drain(self) -> None:
        while self._events:
            self.progress.case_done(*self._events.popleft())

    @contextlib.contextmanager
    def _capture_disabled(self) -> Generator[None]:
        if self._capture is None:
            yield
            return
        with self._capture.global_and_fixture_disabled():
            yield


class _LiveHooks:
    """The block is hidden before each of pytest's writes for an item and drawn again after it."""

    def __init__(self, view: ProgressView) -> None:
        self._view = view

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self) -> Generator[None, object, object]:
        return (yield from self._around_pytest())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self) -> Generator[None, object, object]:
        return (yield from self._around_pytest())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logfinish(self) -> Generator[None, object, object]:
        return (yield from self._around_pytest())

    def _around_pytest(self) -> Generator[None, object, object]:
        self._view.progress.hide()
        try:
            return (yield)
        finally:
            self._view.after_pytest()


class _PlainHooks:
    """Plain lines hide nothing: once an item's writes are done is enough, and costs one call per item, not five."""

    def __init__(self, view: ProgressView) -> None:
        self._view = view

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self) -> None:
        self._view.after_pytest()


def _raw_writer(writer: Any) -> Callable[[str], None]:
    """Write text to pytest's terminal without pytest counting it in its line (`write_raw`, pytest 8.4 and later)."""
    raw: Any = getattr(writer, 'write_raw', None)
    if raw is not None:
        return functools.partial(raw, flush=True)
    file: Any = getattr(writer, '_file')  # noqa: B009  (older pytest: the writer's file, as write_raw uses it)

    def write(text: str) -> None:
        file.write(text)
        file.flush()

    return write


def _isatty(terminal: Any) -> bool:
    # pytest 8.3 and older keep `isatty` as a bool; later versions as a callable bool.
    isatty = terminal.isatty
    return bool(isatty() if callable(isatty) else isatty)


def progress_view(config: pytest.Config, mode: ProgressMode) -> ProgressView | None:
    """The session's progress lines, or None when the setting is off or there is no terminal reporter (`-p no:terminal`)."""
    terminal: Any = config.pluginmanager.get_plugin('terminalreporter')
    if mode == 'off' or terminal is None:
        return None
    if mode == 'auto':
        live = _isatty(terminal) and bool(terminal.hasmarkup) and not shown_as_it_comes(config)
    else:
        live = mode == 'live'
    return ProgressView(config, terminal, live)
