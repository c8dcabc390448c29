"""Writing files so that a reader (or a crash) never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ('new_file_mode', 'write_text_atomic')


def _umask() -> int:
    # Read, not set: os.umask() can only be read by setting it, which races with other threads creating files.
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode `open(path, 'w')` gives a new file: 0666 less the process's umask."""
    return 0o666 & ~_umask()


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and a rename, which is atomic on POSIX.

    The file gets the mode any new file of the user gets (mkstemp's own 0600 would hide a report from the CI job,
    container user or colleague that reads it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
