"""Threads that must not hold the interpreter's exit. Imports nothing heavy: the plugin uses it at configure time."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager

__all__ = ('token_check_as_daemon',)


@contextmanager
def token_check_as_daemon() -> Generator[None]:
    """Make the token check that `logfire.configure()` starts a daemon thread.

    logfire checks a write token in a thread of its own, not a daemon, with a 10 s request timeout. Against a hanging
    Logfire endpoint that thread holds the interpreter's exit for up to 10 s after a short run. The check only
    validates the token and prints the project link (logfire calls it "not essential": the exporters report a bad
    token anyway), so a check started while this is active must not delay the exit. evaltrace wraps its own
    `configure()` call, and the pytest session (where logfire's pytest plugin configures an instance of its own);
    no other thread is touched.
    """
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == 'check_logfire_token':
            self.daemon = True
        original_start(self)

    threading.Thread.start = start  # only while the block runs
    try:
        yield
    finally:
        threading.Thread.start = original_start
