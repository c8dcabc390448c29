"""The exit statuses evaltrace sets, in one place: a pytest session's (decided by `report.decide.decide`) and the CLI's.

pytest's own statuses (0 passed, 1 failed, 2 interrupted, 3 internal error, 4 usage error, 5 no tests) keep their
meaning; evaltrace adds 6 and 7.
"""

from __future__ import annotations

__all__ = (
    'EXIT_BAD_INPUT',
    'EXIT_FAILED',
    'EXIT_GATE_FAILED',
    'EXIT_HARNESS_ERROR',
    'EXIT_INCOMPLETE',
    'EXIT_INTERRUPTED',
    'EXIT_OK',
)

EXIT_OK = 0
"""Every case passed or is within its gate."""
EXIT_FAILED = 1
"""A case failed outside any gate, a plain test failed, or pytest was stopped after a failure (`-x`)."""
EXIT_INTERRUPTED = 2
"""pytest's status for an interrupted run (Ctrl-C, SIGTERM)."""
EXIT_BAD_INPUT = 2
"""The CLI's status for bad arguments or an unreadable input file (argparse's own)."""
EXIT_GATE_FAILED = 6
"""Every failing case is under a gate and a gate failed."""
EXIT_HARNESS_ERROR = 7
"""evaltrace itself could not do its job (for example, could not write the report)."""
EXIT_INCOMPLETE = EXIT_HARNESS_ERROR
"""Cases expected but never run, an interrupted shard, an incomplete merge: the run proves nothing."""
