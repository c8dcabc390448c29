"""A local logfire instance whose spans feed a trace store's spool, and spool writers in processes of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import logfire
from opentelemetry.trace import Tracer

import evaltrace.store.spool
from evaltrace.store.spool import SpoolSpanProcessor, spool_span_processor

WRITER = Path(__file__).with_name('spool_writer.py')


class Recorder:
    """A local (non-global) logfire instance whose spans go to the store's spool, as the plugin will wire it."""

    def __init__(self, store_path: Path, run_id: str, extra_patterns: tuple[str, ...] = ()) -> None:
        self.processor: SpoolSpanProcessor = spool_span_processor(store_path, run_id, extra_patterns=extra_patterns)
        self.logfire = logfire.configure(
            local=True,
            send_to_logfire=False,
            console=False,
            service_name='store-tests',
            environment='testing',
            additional_span_processors=[self.processor],
        )

    def tracer(self, scope: str) -> Tracer:
        """A plain OTel tracer of this instance, for spans with exact times and a chosen scope name."""
        return self.logfire.config.get_tracer_provider().get_tracer(scope)

    def flush(self) -> None:
        self.processor.force_flush()


def spawn_writer(
    store_path: Path, run_id: str, worker: str, count: int, *, crash: bool = False
) -> subprocess.Popen[bytes]:
    """Start `spool_writer.py` in a new process that can import this evaltrace."""
    env = dict(os.environ)
    src = str(Path(evaltrace.store.spool.__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join([src, env.get('PYTHONPATH', '')])
    args = [sys.executable, str(WRITER), str(store_path), run_id, worker, str(count), *(['--crash'] if crash else [])]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
