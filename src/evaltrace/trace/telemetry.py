"""A dead telemetry backend never changes a verdict and costs at most a few seconds.

Spans leave the process through OpenTelemetry batch processors: a worker thread exports them in the background, so
cases never wait for the backend while they run. Three places can still block on a backend that refuses, answers
503 or never answers:

* a flush (`force_flush` exports in the caller's thread, ignores its timeout, and waits behind a stuck export);
* the shutdown at exit (the providers' `atexit` handlers join the worker for up to 30 s);
* each export itself (the OTLP exporter retries 503s and waits on a silent peer up to its 10 s timeout).

So evaltrace wraps every exporter it finds under the tracer provider in a `WatchedExporter` (a circuit breaker: the
first failed export trips it, later exports are dropped at once instead of waiting again), flushes at the end of the
session in a daemon thread with a budget, and, when the backend proved unhealthy, replaces the providers' exit
handlers with one that shuts them down in a daemon thread with a budget. Together at most `FLUSH_BUDGET_S +
EXIT_BUDGET_S` seconds are added to the run. The local report (and the local trace store) never depend on any of it.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import logfire
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..safety.spans import ScrubbedSpans

__all__ = (
    'EXIT_BUDGET_S',
    'FLUSH_BUDGET_S',
    'TelemetryHealth',
    'WatchedExporter',
    'bounded_flush',
    'guard_exit',
    'watch_exporters',
)

FLUSH_BUDGET_S = 2.0
"""Longest the end-of-session flush may wait for the backend."""
EXIT_BUDGET_S = 1.0
"""Longest the shutdown at interpreter exit may wait, once the backend proved unhealthy."""

_ENDPOINT_ATTRS = ('wrapped_exporter', '_exporter', 'exporter', '_client')


@dataclass
class TelemetryHealth:
    """What the session learnt about the telemetry backend(s)."""

    failures: list[str] = field(default_factory=list[str])
    """One line per broken exporter: the endpoint and what went wrong."""
    dropped_spans: int = 0

    @property
    def healthy(self) -> bool:
        return not self.failures

    def message(self, where: str) -> str | None:
        """The one terminal line saying that traces could not be sent, and where they can still be seen."""
        if self.healthy:
            return None
        return f'evaltrace: traces could not be sent ({"; ".join(self.failures)}); {where}'


class WatchedExporter(SpanExporter):
    """A circuit breaker around a span exporter: after one failed (or stuck) export, drop batches at once."""

    def __init__(self, inner: SpanExporter, scrubbed: ScrubbedSpans | None = None) -> None:
        self.inner = inner
        self.scrubbed = scrubbed
        """Makes the copies of the spans that are sent: nothing leaves the process unscrubbed (see `safety.spans`)."""
        self.endpoint = _endpoint_of(inner)
        self.failure: str | None = None
        self.dropped = 0
        self.in_flight_since: float | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.failure is not None:
            self.dropped += len(spans)
            return SpanExportResult.FAILURE
        self.in_flight_since = time.monotonic()
        try:
            # A span that cannot be scrubbed is not sent: the error trips the breaker like a failed export.
            sent = spans if self.scrubbed is None else [self.scrubbed.copy(span) for span in spans]
            result = self.inner.export(sent)
        except Exception as e:  # an exporter bug or a transport error is a failed export, never the caller's problem
            self.trip(f'{type(e).__name__}: {e}')
            self.dropped += len(spans)
            return SpanExportResult.FAILURE
        finally:
            self.in_flight_since = None
        if result is not SpanExportResult.SUCCESS:
            self.trip('export failed')
            self.dropped += len(spans)
        return result

    def trip(self, reason: str) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = reason

    def stuck_for(self) -> float:
        since = self.in_flight_since
        return 0.0 if since is None else time.monotonic() - since

    def describe(self) -> str:
        where = self.endpoint or type(self.inner).__name__
        return f'{where}: {self.failure}'

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True if self.failure is not None else self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.inner.shutdown()


def _endpoint_of(exporter: Any) -> str | None:
    seen: set[int] = set()
    obj: Any = exporter
    for _ in range(8):
        if obj is None or id(obj) in seen:
            return None
        seen.add(id(obj))
        endpoint = getattr(obj, '_endpoint', None)
        if isinstance(endpoint, str):
            return endpoint
        obj = next((getattr(obj, a) for a in _ENDPOINT_ATTRS if getattr(obj, a, None) is not None), None)
    return None


def _sdk_tracer_provider() -> Any:
    proxy: Any = logfire.DEFAULT_LOGFIRE_INSTANCE.config.get_tracer_provider()
    return getattr(proxy, 'provider', proxy)


def _children(obj: Any) -> list[Any]:
    values: list[Any] = []
    attrs: dict[str, Any] = getattr(obj, '__dict__', {})
    for value in attrs.values():
        if isinstance(value, list | tuple):
            values.extend(cast(Sequence[Any], value))
        else:
            values.append(value)
    return values


def _is_telemetry_object(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith(('opentelemetry', 'logfire'))


def watch_exporters(root: Any = None, scrubbed: ScrubbedSpans | None = None) -> list[WatchedExporter]:
    """Wrap every span exporter under the tracer provider in a `WatchedExporter` (idempotent), which sends the copies
    `scrubbed` makes when it is given.

    The SDK has no public way to list a provider's exporters, so this walks the processor tree (logfire's wrappers,
    batch and simple processors) through their attributes and swaps the exporter each batch processor holds.
    """
    try:
        return _watch(_sdk_tracer_provider() if root is None else root, scrubbed)
    except Exception:  # never let a telemetry safeguard break a run
        return []


def _watch(root: Any, scrubbed: ScrubbedSpans | None) -> list[WatchedExporter]:
    watched: list[WatchedExporter] = []
    queue: deque[tuple[Any, int]] = deque([(root, 0)])
    seen: set[int] = set()
    while queue:
        obj, depth = queue.popleft()
        if id(obj) in seen or depth > 10:
            continue
        seen.add(id(obj))
        attrs: dict[str, Any] = getattr(obj, '__dict__', {})
        for holder_attr in ('_exporter', 'span_exporter'):
            inner = attrs.get(holder_attr)  # instance attributes only: properties are views of these
            if isinstance(inner, WatchedExporter):
                inner.scrubbed = inner.scrubbed or scrubbed
                watched.append(inner)
            elif isinstance(inner, SpanExporter):
                wrapper = WatchedExporter(inner, scrubbed)
                attrs[holder_attr] = wrapper
                watched.append(wrapper)
        for child in _children(obj):
            if _is_telemetry_object(child) and not isinstance(child, SpanExporter | WatchedExporter):
                queue.append((child, depth + 1))
    return watched


def _run_bounded(fn: Callable[[], Any], budget_s: float, name: str) -> bool:
    """Run `fn` in a daemon thread and wait at most `budget_s`; True when it finished in time."""
    thread = threading.Thread(target=_quietly(fn), name=name, daemon=True)
    thread.start()
    thread.join(budget_s)
    return not thread.is_alive()


def _quietly(fn: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(Exception):  # telemetry trouble is reported through TelemetryHealth, not raised
            fn()

    return run


def bounded_flush(watched: Sequence[WatchedExporter], budget_s: float = FLUSH_BUDGET_S) -> TelemetryHealth:
    """Flush the spans of the session, waiting at most `budget_s`, and say which exporters are unhealthy."""
    finished = _run_bounded(
        lambda: logfire.force_flush(timeout_millis=int(budget_s * 1000)), budget_s, 'evaltrace-flush'
    )
    health = TelemetryHealth()
    for w in watched:
        if w.failure is None and not finished and w.stuck_for() > 0:
            w.trip(f'no successful export within {budget_s:g} s')
        if w.failure is not None:
            health.failures.append(w.describe())
            health.dropped_spans += w.dropped
    if not finished and health.healthy:
        health.failures.append(f'flush did not finish within {budget_s:g} s')
    return health


_exit_guard_installed = False


def guard_exit(budget_s: float = EXIT_BUDGET_S) -> None:
    """Bound the shutdown at interpreter exit, for a backend that proved unhealthy.

    The OpenTelemetry providers register `atexit` handlers that flush and join their workers, which a stuck export
    holds for up to its timeout. Those handlers are replaced by one that runs the same shutdown in a daemon thread
    and waits at most `budget_s`; the process then exits, and the abandoned export with it.
    """
    global _exit_guard_installed
    if _exit_guard_installed:
        return
    config: Any = logfire.DEFAULT_LOGFIRE_INSTANCE.config
    providers: list[Any] = []
    for getter in ('get_tracer_provider', 'get_meter_provider', 'get_logger_provider'):
        try:
            proxy: Any = getattr(config, getter)()
        except Exception:
            continue
        providers.append(getattr(proxy, 'provider', proxy))
    for p in providers:
        shutdown = getattr(p, 'shutdown', None)
        if shutdown is not None:
            atexit.unregister(shutdown)

    def shutdown_all() -> None:
        for p in providers:
            _quietly(p.shutdown)()

    atexit.register(lambda: _run_bounded(shutdown_all, budget_s, 'evaltrace-exit'))
    _exit_guard_installed = True
