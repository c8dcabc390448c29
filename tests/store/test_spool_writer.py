"""The spool's writer process: the same lines as writing in this process, and nothing lost when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from evaltrace.safety.scrub import SecretScrubber
from evaltrace.store.records import read_spool
from evaltrace.store.spool import SpoolSpanExporter, SpoolSpanProcessor
from evaltrace.store.spool_writer import SpoolWriterProcess, spool_span_processor

pytestmark = pytest.mark.skipif(os.name != 'posix', reason='the writer process is POSIX only')

SECRET = 'sk-proj-Abc123Def456Ghi789Jkl012'


def varied_spans() -> list[ReadableSpan]:
    """Spans with what a line is built from: JSON attributes, events, an exception, links, two resources, secrets."""
    memory = InMemorySpanExporter()
    spans: list[ReadableSpan] = []
    for service in ('billing', 'search'):
        provider = TracerProvider(
            resource=Resource.create({'service.name': service, 'process.command_args': ('app', f'--key={SECRET}')})
        )
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer('writer-tests')
        for i in range(150):
            attributes = {
                'i': i,
                'note': f'call {i} with {SECRET}',
                'password': 'hunter2-hunter2',
                'payload': json.dumps({'Authorization': 'Bearer abcdefghijklmnop', 'items': [i, 'x']}),
                'logfire.json_schema': json.dumps({'type': 'object', 'properties': {'payload': {'type': 'object'}}}),
                'logfire.msg': f'step {i}',
                'logfire.tags': ('a', 'b'),
            }
            with (
                tracer.start_as_current_span(f'step {i}', attributes=attributes) as outer,
                tracer.start_as_current_span('inner', links=[Link(outer.get_span_context(), {'why': 'x'})]) as s,
            ):
                s.add_event('note', {'token': 'abcdefghijkl'})
                if i % 10 == 0:
                    s.record_exception(ValueError(f'bad {SECRET}'))
                    s.set_status(Status(StatusCode.ERROR, f'failed with {SECRET}'))
        spans = list(memory.get_finished_spans())
    return spans


def test_the_writer_process_writes_the_lines_this_process_would(tmp_path: Path) -> None:
    spans = varied_spans()
    here = SpoolSpanExporter(tmp_path / 'here.jsonl', 'run-1', SecretScrubber((r'hunter\d',)))
    here.export(spans)
    writer = SpoolWriterProcess.start(tmp_path / 'there.jsonl', 'run-1', (r'hunter\d',))
    assert writer is not None
    for start in range(0, len(spans), 64):  # several messages: each must be read on its own
        assert writer.send(spans[start : start + 64])
    assert writer.flush(30)
    writer.close()
    expected = (tmp_path / 'here.jsonl').read_text().splitlines()
    assert len(expected) == 600
    assert (tmp_path / 'there.jsonl').read_text().splitlines() == expected
    assert SECRET not in ''.join(expected) and 'hunter2' not in ''.join(expected)


def test_a_flush_returns_once_every_span_sent_is_in_the_spool(tmp_path: Path) -> None:
    store = tmp_path / 'traces.duckdb'
    processor = spool_span_processor(store, 'run-2', writer_process=True, schedule_delay_millis=60_000)
    assert processor.writer is not None
    for span in varied_spans():
        processor.on_end(span)
    assert processor.force_flush()
    assert len(list(read_spool(store, 'run-2'))) == 600
    processor.shutdown()


def test_spans_reach_the_spool_after_the_writer_process_dies(tmp_path: Path) -> None:
    store = tmp_path / 'traces.duckdb'
    processor = spool_span_processor(store, 'run-3', writer_process=True, schedule_delay_millis=60_000)
    writer = processor.writer
    assert isinstance(writer, SpoolWriterProcess)
    spans = varied_spans()
    for span in spans[:300]:
        processor.on_end(span)
    assert processor.force_flush()
    os.kill(writer.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(writer.pid):
        time.sleep(0.01)
    for span in spans[300:]:
        processor.on_end(span)
    processor.force_flush()
    assert processor.writer is None  # this process writes from now on
    assert sorted(r['span_id'] for r in read_spool(store, 'run-3')) == sorted(
        f'{s.context.span_id:016x}' for s in spans if s.context is not None
    )
    processor.shutdown()


def test_spans_sent_to_a_writer_process_that_dies_before_it_is_ready_are_written_here(tmp_path: Path) -> None:
    """A child that cannot even start serving (here: a pattern it cannot compile) loses nothing it was sent."""
    path = tmp_path / 'spool' / 'run-5-main-1.jsonl'
    writer = SpoolWriterProcess.start(path, 'run-5', ('(',))
    assert writer is not None
    processor = SpoolSpanProcessor(SpoolSpanExporter(path, 'run-5'), max_batch=50, max_delay_s=3600, writer=writer)
    spans = varied_spans()
    for span in spans:
        processor.on_end(span)
    processor.force_flush()
    assert processor.writer is None and not writer.alive
    assert sorted(r['span_id'] for r in read_spool(tmp_path / 'traces.duckdb', 'run-5')) == sorted(
        f'{s.context.span_id:016x}' for s in spans if s.context is not None
    )


def test_shutdown_ends_the_writer_process(tmp_path: Path) -> None:
    processor = spool_span_processor(tmp_path / 'traces.duckdb', 'run-4', writer_process=True)
    writer = processor.writer
    assert isinstance(writer, SpoolWriterProcess)
    processor.on_end(varied_spans()[0])
    processor.shutdown()
    assert not _alive(writer.pid)
    assert len(list(read_spool(tmp_path / 'traces.duckdb', 'run-4'))) == 1


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return finished == 0


REENTERED = """
import os, signal, sys
from pathlib import Path
from evaltrace.store.spool_writer import spool_span_processor

processor = spool_span_processor(Path(sys.argv[1]), 'run-6', writer_process=True)
writer = processor.writer
assert writer is not None and writer.flush(30)

def second_ctrl_c(signum, frame):
    # What a second Ctrl-C does: logfire's patched os._exit flushes every span processor, in this handler.
    processor.force_flush(timeout_millis=30_000)
    os._exit(3)

signal.signal(signal.SIGALRM, second_ctrl_c)
signal.setitimer(signal.ITIMER_REAL, 0.2)
writer._read_answers(20, 999)  # the main thread waits on the child, as during the first Ctrl-C's flush
os._exit(4)
"""


def test_a_flush_from_a_signal_handler_that_interrupted_a_flush_does_not_wait_for_itself(tmp_path: Path) -> None:
    script = tmp_path / 'reentered.py'
    script.write_text(REENTERED)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / 'traces.duckdb')], capture_output=True, timeout=60, check=False
    )
    # 3: the handler's flush returned and it exited (4: only once the interrupted wait was over; a hang: forever)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
