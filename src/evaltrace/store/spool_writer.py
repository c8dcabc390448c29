"""The span processor that feeds a process's spool, and its writer process, which scrubs, encodes and appends the
spans on another core.

Scrubbing and encoding a span for the spool costs far more than copying it, and a Python process runs its threads
one at a time: done where the span ends, it takes turns with the cases themselves. So `SpoolWriterProcess` starts
one child Python process (`python -c ... main()`), and the span processor (`store.spool.SpoolSpanProcessor`) only
copies each batch to it as plain data (`RawSpan`s, pickled down a pipe). The child turns them into the same lines
the parent would write (`store.spool.SpoolSpanExporter.export_raw`), with a scrubber built from the same patterns and
the same environment.

The messages down the pipe are pickled tuples: `('spans', [(resource index, RawSpan fields), ...])`,
`('resource', index, attributes)` before the first span of each resource, and `('flush', n)`, which the child
answers with the line `n ok` (or `n failed`) once everything before it is written. At the end of its input (the
parent closed the pipe, or died) the child writes what it has and exits. The child's stderr goes nowhere: it holds
spans that are not scrubbed yet.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from ..safety.scrub import SecretScrubber
from .files import spool_file
from .spool import RawSpan, SpoolSpanExporter, SpoolSpanProcessor, SpoolWriter, raw_span, resource_columns

__all__ = ('SpoolWriterProcess', 'main', 'spool_span_processor')

# A bigger pipe (Linux allows 1 MiB unprivileged) lets the first batches wait while the child is still importing.
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the fcntl module only from Python 3.10 on Linux
_CLOSE_TIMEOUT_S = 30.0


class SpoolWriterProcess:
    """A child process that writes this process's spans to its spool file (see the module docstring)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._pid = os.getpid()
        self._resources: dict[int, int] = {}  # id(resource) -> index sent to the child
        self._kept: list[Resource] = []  # the resources indexed, kept alive so that their ids stay theirs
        self._flushes = 0
        self._pipe = _Turn()  # one message down the pipe at a time, whichever thread sends it
        self._answers = _Turn()  # one reader of the child's answers at a time
        self._dead = False
        # What was sent before the child said it is ready (it imports first): written by the parent if it dies first.
        self._unconfirmed: list[ReadableSpan] | None = []
        self._answered = b''  # what the child answered and was not read yet

    @classmethod
    def start(cls, path: Path, run_id: str, extra_patterns: Sequence[str]) -> SpoolWriterProcess | None:
        """Start the child for this spool file; None if it cannot be started (the caller then writes itself)."""
        if os.name != 'posix':  # the flush waits on the pipe with select(), which Windows has only for sockets
            return None
        # The child imports evaltrace from where this process did, even if that is not on the default path.
        package_root = str(Path(__file__).resolve().parents[2])
        code = (
            f'import sys; sys.path.insert(0, {package_root!r}); from evaltrace.store.spool_writer import main; main()'
        )
        try:
            process = subprocess.Popen(
                [sys.executable, '-c', code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            return None
        assert process.stdin is not None
        try:
            import fcntl

            fcntl.fcntl(process.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means the first batch may wait for the child to start
        writer = cls(process)
        if not writer._post(('config', str(path), run_id, tuple(extra_patterns))):
            return None
        return writer

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """False once the child was found dead (or this is a forked copy of the parent)."""
        return not self._dead and os.getpid() == self._pid

    def unwritten(self) -> list[ReadableSpan]:
        """The spans this child took and died before it could have written: those sent before it was ready."""
        return list(self._unconfirmed or ()) if self._dead else []

    def send(self, spans: Sequence[ReadableSpan]) -> bool:
        """Copy the batch to the child; False if the child is gone, or this is a forked copy of the parent."""
        if not self.alive:
            return False
        if self._unconfirmed is not None:
            self._read_answers(0, None)
        items: list[tuple[int, tuple[Any, ...]]] = []
        messages: list[tuple[Any, ...]] = []
        for span in spans:
            raw = raw_span(span)
            if raw is None:
                continue
            resource = span.resource
            index = self._resources.get(id(resource))
            if index is None:
                index = self._resources[id(resource)] = len(self._kept)
                self._kept.append(resource)
                messages.append(('resource', index, dict(resource.attributes)))
            items.append((index, tuple(raw)))
        messages.append(('spans', items))
        if not all(self._post(message) for message in messages):
            return False
        if self._unconfirmed is not None:
            self._unconfirmed.extend(spans)
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until the child has written everything sent so far (at most `timeout_s`)."""
        if not self.alive:
            return False
        with self._pipe.enter() as mine:
            if not mine:
                return False
            self._flushes += 1
            n = self._flushes
        if not self._post(('flush', n)):
            return False
        return self._read_answers(timeout_s, n)

    def _read_answers(self, timeout_s: float, flush: int | None) -> bool:
        """Read the child's answers until flush `flush` is answered (True if it went well), or, with None, until none
        is waiting (True). False on timeout or if the child died."""
        stdout = self._process.stdout
        assert stdout is not None
        fd = stdout.fileno()  # read with os.read: a buffered reader may hold a line that select() cannot see
        with self._answers.enter() as mine:
            while mine and not self._dead:
                if b'\n' not in self._answered:
                    waiting, _, _ = select.select([fd], [], [], timeout_s)
                    if not waiting:
                        return flush is None
                    chunk = os.read(fd, 4096)
                    self._answered += chunk
                    self._dead = not chunk
                    continue
                line, _, self._answered = self._answered.partition(b'\n')
                if line == b'ready':
                    self._unconfirmed = None
                else:
                    number, _, status = line.decode().partition(' ')
                    if number == str(flush):
                        return status == 'ok'
            return False

    def close(self) -> None:
        """Close the pipe; the child writes what it has and exits (waited for, within a bound)."""
        if os.getpid() != self._pid:
            return
        self._dead = True
        for turn, stream in ((self._pipe, self._process.stdin), (self._answers, self._process.stdout)):
            with turn.enter() as mine:
                if not mine:
                    return  # within a signal handler that interrupted this very stream: the child ends with us
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        try:
            self._process.wait(_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _post(self, message: tuple[Any, ...]) -> bool:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._pipe.enter() as mine:
            stdin = self._process.stdin
            if not mine or self._dead or stdin is None:
                return False
            try:
                stdin.write(data)
                stdin.flush()
            except (OSError, ValueError):  # BrokenPipeError: the child died; ValueError: the pipe was closed
                self._dead = True
                return False
        return True


class _Turn:
    """A lock that never makes a thread wait for itself.

    A signal handler runs in the main thread between two bytecodes, maybe while that thread holds the lock; and
    logfire makes `os._exit` (evaltrace's second Ctrl-C) flush every span processor first. Waiting for the lock
    there would wait forever: `enter` yields False instead, and the caller gives up on the writer process.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant, so that the handler gets past it and sees `_depth`
        self._depth = 0

    @contextlib.contextmanager
    def enter(self) -> Generator[bool]:
        with self._lock:
            self._depth += 1
            try:
                yield self._depth == 1
            finally:
                self._depth -= 1


def _serve(source: IO[bytes], answers: IO[bytes]) -> None:
    exporter: SpoolSpanExporter | None = None
    resources: dict[int, str] = {}
    failed = False
    while True:
        try:
            # A new unpickler for each message: each was pickled on its own, and an unpickler's memo lasts.
            message = pickle.load(source)
        except (EOFError, pickle.UnpicklingError, OSError):
            return
        kind = message[0]
        try:
            if kind == 'config':
                _, path, run_id, patterns = message
                exporter = SpoolSpanExporter(Path(path), run_id, SecretScrubber(patterns))
                answers.write(b'ready\n')
                answers.flush()
            elif kind == 'flush':
                answers.write(f'{message[1]} {"failed" if failed or exporter is None else "ok"}\n'.encode())
                answers.flush()
                failed = False
            elif exporter is None:
                return  # never configured
            elif kind == 'resource':
                _, index, attributes = message
                resources[index] = resource_columns(attributes, exporter.scrubber)
            elif kind == 'spans':
                spans = [(RawSpan(*fields), resources[index]) for index, fields in message[1]]
                failed = exporter.export_raw(spans) is not SpanExportResult.SUCCESS or failed
        except Exception:  # a message this child cannot use: reported by the next flush, and the next is read
            if exporter is None:
                return  # not even configured: the parent writes what it sent (see `SpoolWriterProcess.unwritten`)
            failed = True


def main() -> None:
    """The child's entry point: serve the parent's messages from stdin until it closes it."""
    _serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every batch was appended and its file closed as it came: nothing is left to tear down, and the parent may be
    # waiting for this process to end.
    os._exit(0)


def spool_span_processor(
    store_path: Path | str,
    run_id: str,
    *,
    worker: str | None = None,
    extra_patterns: Sequence[str] = (),
    schedule_delay_millis: float = 1000,
    writer_process: bool = False,
) -> SpoolSpanProcessor:
    """The span processor that feeds the local store from this process.

    Add it to the tracer provider (e.g. `logfire.configure(additional_span_processors=[...])`) in every process
    that produces spans, controller and xdist workers alike, with the same `run_id`. Call its `force_flush()` (or
    `shutdown()`) before the spool is read, so that the last batch is on disk.

    Args:
        store_path: The DuckDB file; spool files go to `spool/` beside it.
        run_id: Shared by all processes of one run.
        worker: Names the spool file; default `$PYTEST_XDIST_WORKER` or `main`. The pid is always appended.
        extra_patterns: Regexes of further secrets to scrub (see `SecretScrubber`).
        schedule_delay_millis: Longest time a finished span waits before it is written (checked as spans end).
        writer_process: Scrub, encode and write the spans in a process of their own (see
            the module docstring), off this process's GIL; this process writes them itself if that process cannot
            start or dies.
    """
    worker = worker or os.environ.get('PYTEST_XDIST_WORKER', 'main')
    path = spool_file(store_path, run_id, worker, os.getpid())
    exporter = SpoolSpanExporter(path, run_id, SecretScrubber(extra_patterns))
    writer: SpoolWriter | None = None
    if writer_process:
        writer = SpoolWriterProcess.start(path, run_id, extra_patterns)
    # Through a writer process, smaller batches: each is copied to it at once, and written there while cases run.
    max_batch = 128 if writer is not None else 1024
    return SpoolSpanProcessor(exporter, max_batch=max_batch, max_delay_s=schedule_delay_millis / 1000, writer=writer)
