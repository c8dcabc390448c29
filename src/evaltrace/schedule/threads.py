"""Threads that must not hold the interpreter's exit, nor change a verdict. Imports nothing heavy: the plugin uses
it at configure time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from contextlib import contextmanager

import pytest

__all__ = ('TOKEN_CHECK_NOTES', 'token_check_as_daemon', 'token_check_notes')

TOKEN_CHECK_NOTES = pytest.StashKey[list[str]]()
"""What logfire's token check raised or warned, kept to be shown once (scrubbed) in the terminal summary."""


@contextmanager
def token_check_as_daemon(notes: list[str] | None = None) -> Generator[None]:
    """Make the token check that `logfire.configure()` starts a daemon thread that never raises.

    logfire checks a write token in a thread of its own, not a daemon, with a 10 s request timeout. Against a hanging
    Logfire endpoint that thread holds the interpreter's exit for up to 10 s after a short run. The check only
    validates the token and prints the project link (logfire calls it "not essential": the exporters report a bad
    token anyway), so a check started while this is active must not delay the exit.

    Against an unreachable API the check warns from its thread; under `filterwarnings = ["error"]` (common in
    projects) that warning is an exception in the thread, which pytest reports as a failure of whichever test runs
    at that moment, with a traceback that shows the write token. With `notes`, what the check raises is caught and
    appended there instead. evaltrace wraps its own `configure()` call, and the pytest session (where logfire's
    pytest plugin configures an instance of its own); no other thread is touched.
    """
    original_start = threading.Thread.start
    active = True

    def start(self: threading.Thread) -> None:
        if active and self.name == 'check_logfire_token':
            self.daemon = True
            if notes is not None:
                self.run = _contained(self.run, notes)
        original_start(self)

    threading.Thread.start = start  # only while the block runs
    try:
        yield
    finally:
        active = False
        # A conftest loaded inside the block may have wrapped `start` in turn: it stays, and this one passes through.
        if threading.Thread.start is start:
            threading.Thread.start = original_start


def _contained(run: Callable[[], None], notes: list[str]) -> Callable[[], None]:
    def contained() -> None:
        try:
            run()
        except Exception as e:  # a warning turned error included: telemetry never fails a test
            notes.append(f'logfire token check: {type(e).__name__}: {e}')

    return contained


def token_check_notes(config: pytest.Config) -> list[str]:
    """The token check's problems, one line each, scrubbed of secrets (the write token among them)."""
    notes = config.stash.get(TOKEN_CHECK_NOTES, None) or []
    if not notes:
        return []
    from ..safety.scrub import SecretScrubber

    scrubber = SecretScrubber()
    return [scrubber.scrub_text(note.splitlines()[0] if note.strip() else note) for note in notes]
