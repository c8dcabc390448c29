"""Writes spans to the spool of a trace store from a separate process, as an xdist worker would.

Usage: python spool_writer.py STORE RUN_ID WORKER COUNT [--crash]
With --crash, the process flushes COUNT spans, starts 50 more, and dies without shutdown (os._exit).
"""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from evaltrace.store.spool import spool_span_processor


def main() -> None:
    store, run_id, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    crash = '--crash' in sys.argv
    provider = TracerProvider(resource=Resource.create({'service.name': f'writer-{worker}'}))
    # Batches are written by the explicit flushes below only, so that the spans after the last flush are lost.
    processor = spool_span_processor(store, run_id, worker=worker, schedule_delay_millis=60_000)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer('writer')
    for i in range(count):
        with tracer.start_as_current_span(f'span {i}', attributes={'worker': worker, 'i': i}):
            pass
        if i % 100 == 99:
            processor.force_flush()
    processor.force_flush()
    if crash:
        for i in range(50):
            with tracer.start_as_current_span(f'lost {i}'):
                pass
        os._exit(1)
    provider.shutdown()


if __name__ == '__main__':
    main()
