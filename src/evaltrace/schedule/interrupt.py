"""Ctrl-C and SIGTERM (a CI cancel) stop the run cleanly; a second one exits at once.

The first SIGINT or SIGTERM raises `KeyboardInterrupt` in the main thread, as Python's default Ctrl-C handler
does: the running suite's event loop stops, pytest ends the session as interrupted (exit status 2), and evaltrace
writes the report of every finished case with `complete: false` and `interrupted: "SIGINT"` (or `"SIGTERM"`).
A second signal while that happens exits the process immediately with status 128 + signal number; every finished
case is already on disk by then (see report.journal), and report writes are atomic, so no file is left corrupt.

Handlers are installed only in the main thread, only over the default handlers (never over a user's), and removed
at the end of the session.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ('InterruptGuard',)


@dataclass
class InterruptGuard:
    """Installs the SIGINT/SIGTERM handlers for one session and remembers the first signal received."""

    received: str | None = None
    _previous: dict[int, Any] = field(default_factory=dict[int, Any])

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            current = signal.getsignal(sig)
            if current is default:
                self._previous[sig] = current
                signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            sys.stderr.write(f'\nevaltrace: second {name}, exiting now; finished cases are on disk\n')
            sys.stderr.flush()
            os._exit(128 + signum)
        self.received = name
        raise KeyboardInterrupt(f'evaltrace: {name} received')
