"""The HTTP side of record/replay: hooks in httpcore and httpx that route each request to the active cassette.

`install()` patches, once per process, the connection pools of `httpcore` and `httpcore2` (the layers below `httpx`
and `httpx2`; the OpenAI SDK uses `httpx2`, other provider SDKs use `httpx`), plus `send()` of the async and sync
clients of both. Each patched method looks up a `ContextVar`; when no cassette is active in the current context it
calls straight through, so code outside a case pays one `ContextVar.get()`.

`routed_to()` sets that `ContextVar` for the current task. Cases run concurrently in one event loop, each in its own
task with its own copy of the context, so every request is routed to its own case's cassette. vcrpy's own
`use_cassette` can't do this: it patches the transport classes globally for the cassette's lifetime, so two
cassettes open at once patch over each other and the last one opened receives every request.

Hooking the pool rather than the transport keeps logfire's httpx spans (which wrap the transport) in replayed
traces, so a replayed trace looks like a live one, plus the attribute `evaltrace.replayed`. What a cassette holds,
and how a request is matched, is the cassette's business (see `run.replay`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast

from opentelemetry import trace

from ..names import REPLAYED_ATTRIBUTE
from .faults import REPLAYED_RESPONSE

__all__ = ('REPLAYED_ATTRIBUTE', 'Recorded', 'RoutedCassette', 'install', 'routed_to')

"""Span attribute set on the spans of a request made under a cassette: `True` when replayed, `False` when live."""


@dataclass
class Recorded:
    """An HTTP response as a cassette keeps it: status, headers, the whole body and the reason phrase."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    reason: bytes


class RoutedCassette(Protocol):
    """What the hooks need of the cassette that the current task's requests are routed to."""

    def request(self, method: str, uri: str, body: bytes, headers: dict[str, str]) -> Any:
        """The cassette's form of a request (passed back to `lookup` and `record`)."""
        ...

    def lookup(self, request: Any) -> Recorded | None:
        """The recorded response for `request`, or None when it must go live; raises when it may not."""
        ...

    def record(self, request: Any, live: Recorded) -> None:
        """Keep the live response to `request`."""
        ...


_ACTIVE: ContextVar[RoutedCassette | None] = ContextVar('evaltrace_cassette', default=None)
# The span current when the client's send() began: pydantic-ai's model-request span, marked as replayed too.
_OUTER_SPAN: ContextVar[trace.Span | None] = ContextVar('evaltrace_outer_span', default=None)


@contextlib.contextmanager
def routed_to(cassette: RoutedCassette) -> Generator[None]:
    """Route the HTTP requests of the current task (and the tasks it starts) to `cassette`. Requires `install()`."""
    token = _ACTIVE.set(cassette)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _mark_spans(replayed: bool) -> None:
    spans = {id(s): s for s in (trace.get_current_span(), _OUTER_SPAN.get()) if s is not None}
    for span in spans.values():
        if span.is_recording():
            span.set_attribute(REPLAYED_ATTRIBUTE, replayed)


def _lookup(active: RoutedCassette, request: Any) -> Recorded | None:
    recorded = active.lookup(request)  # a request the cassette refuses raises here, and marks nothing
    _mark_spans(recorded is not None)
    return recorded


class _AsyncBytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data


def _request(active: RoutedCassette, request: Any, body: bytes) -> Any:
    headers: dict[str, str] = {}
    for name, value in cast(list[tuple[bytes, bytes]], request.headers):
        headers[name.decode('latin-1')] = value.decode('latin-1')
    return active.request(request.method.decode('ascii'), bytes(request.url).decode('latin-1'), body, headers)


def _response(core: Any, recorded: Recorded, extensions: dict[str, Any] | None = None) -> Any:
    ext = {'http_version': b'HTTP/1.1', 'reason_phrase': recorded.reason}
    if extensions:
        ext.update({k: v for k, v in extensions.items() if k != 'network_stream'})
    return core.Response(recorded.status, headers=recorded.headers, content=recorded.body, extensions=ext)


def _patch_async_pool(core: Any) -> None:
    original = core.AsyncConnectionPool.handle_async_request

    async def handle_async_request(self: Any, request: Any) -> Any:
        active = _ACTIVE.get()
        if active is None:
            return await original(self, request)
        body = b''.join([chunk async for chunk in request.stream])
        request.stream = _AsyncBytes(body)
        cassette_request = _request(active, request, body)
        recorded = _lookup(active, cassette_request)
        if recorded is not None:
            return _response(core, recorded, {REPLAYED_RESPONSE: True})
        response = await original(self, request)
        try:
            content = b''.join([chunk async for chunk in response.stream])
        finally:
            await response.aclose()
        reason = cast(bytes, response.extensions.get('reason_phrase', b''))
        live = Recorded(response.status, response.headers, content, reason)
        active.record(cassette_request, live)
        return _response(core, live, response.extensions)

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]
    core.AsyncConnectionPool.handle_async_request = handle_async_request


def _patch_sync_pool(core: Any) -> None:
    original = core.ConnectionPool.handle_request

    def handle_request(self: Any, request: Any) -> Any:
        active = _ACTIVE.get()
        if active is None:
            return original(self, request)
        body = b''.join(list(request.stream))
        request.stream = _AsyncBytes(body)
        cassette_request = _request(active, request, body)
        recorded = _lookup(active, cassette_request)
        if recorded is not None:
            return _response(core, recorded, {REPLAYED_RESPONSE: True})
        response = original(self, request)
        try:
            content = b''.join(list(response.stream))
        finally:
            response.close()
        reason = cast(bytes, response.extensions.get('reason_phrase', b''))
        live = Recorded(response.status, response.headers, content, reason)
        active.record(cassette_request, live)
        return _response(core, live, response.extensions)

    handle_request.__wrapped__ = original  # type: ignore[attr-defined]
    core.ConnectionPool.handle_request = handle_request


def _patch_send(client_cls: Any, is_async: bool) -> None:
    original = client_cls.send

    async def send_async(self: Any, request: Any, **kwargs: Any) -> Any:
        if _ACTIVE.get() is None:
            return await original(self, request, **kwargs)
        token = _OUTER_SPAN.set(trace.get_current_span())
        try:
            return await original(self, request, **kwargs)
        finally:
            _OUTER_SPAN.reset(token)

    def send_sync(self: Any, request: Any, **kwargs: Any) -> Any:
        if _ACTIVE.get() is None:
            return original(self, request, **kwargs)
        token = _OUTER_SPAN.set(trace.get_current_span())
        try:
            return original(self, request, **kwargs)
        finally:
            _OUTER_SPAN.reset(token)

    send = send_async if is_async else send_sync
    send.__wrapped__ = original  # type: ignore[attr-defined]
    client_cls.send = send


_install_lock = threading.Lock()
_installed = False


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def install() -> None:
    """Install the routing hooks into httpx/httpcore and httpx2/httpcore2 (whichever are installed). Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for client_name, core_name in (('httpx', 'httpcore'), ('httpx2', 'httpcore2')):
            client, core = _import(client_name), _import(core_name)
            if client is None or core is None:
                continue
            _patch_async_pool(core)
            _patch_sync_pool(core)
            _patch_send(client.AsyncClient, is_async=True)
            _patch_send(client.Client, is_async=False)
        _installed = True
