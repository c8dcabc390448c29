"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI chat-completions API for pydantic-ai.

It is driven by the real `OpenAIChatModel` through `OpenAIProvider(base_url=server.base_url, api_key=...)`, so tests
exercise the real provider client, the real httpx transport and the real pricing. Each request is answered by a
`Reply`, either from a scripted list (in order) or from a callable given the request. Faults are scriptable per
request: any HTTP status (429 with or without `Retry-After`, 500, 503...), a connection reset, or a stall (the
request is read and never answered until the server stops). A server-wide latency delays every answer.

Usage:

    with serve_openai([Reply.text('hello'), Reply.error(429, retry_after=0.1)], latency=0.05) as server:
        model = server.model('gpt-4o-mini')  # OpenAIChatModel against this server
        ...
        assert server.requests[0].json['model'] == 'gpt-4o-mini'
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic_ai.models.openai import OpenAIChatModel

__all__ = ('FakeOpenAI', 'RecordedRequest', 'Reply', 'ToolCall', 'serve_openai')

Fault = Literal['reset', 'stall']


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict[str, Any])
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    A 200 reply is a chat completion (or an SSE stream when the request asked for `stream: true`); any other status
    sends `body` (default: an OpenAI-style error object) with `headers`. `fault` overrides everything.
    """

    content: str | None = 'ok'
    tool_calls: Sequence[ToolCall] = ()
    prompt_tokens: int = 10
    completion_tokens: int = 5
    finish_reason: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict[str, str])
    body: Any = None
    fault: Fault | None = None
    latency: float | None = None
    """Seconds to wait before answering; `None` uses the server's latency."""
    chunk_size: int = 4
    """Characters of content per SSE chunk when streaming."""

    @classmethod
    def text(cls, content: str, *, prompt_tokens: int = 10, completion_tokens: int = 5, **kw: Any) -> Reply:
        """A plain assistant text answer."""
        return cls(content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, **kw)

    @classmethod
    def tool(cls, *calls: ToolCall, prompt_tokens: int = 10, completion_tokens: int = 5, **kw: Any) -> Reply:
        """An answer made of tool calls."""
        return cls(
            content=None, tool_calls=calls, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, **kw
        )

    @classmethod
    def error(cls, status: int, *, retry_after: float | None = None, message: str | None = None, **kw: Any) -> Reply:
        """An HTTP error answer (429, 500, 503...), optionally with a `Retry-After` header in seconds."""
        headers = dict(kw.pop('headers', {}))
        if retry_after is not None:
            headers['Retry-After'] = f'{retry_after:g}'
        body = {
            'error': {
                'message': message or f'fake_openai: HTTP {status}',
                'type': 'rate_limit_error' if status == 429 else 'server_error',
                'code': None,
                'param': None,
            }
        }
        return cls(status=status, headers=headers, body=body, **kw)

    @classmethod
    def reset(cls) -> Reply:
        """Close the connection with a TCP reset, without answering."""
        return cls(fault='reset')

    @classmethod
    def stall(cls) -> Reply:
        """Read the request and never answer (until the server stops)."""
        return cls(fault='stall')


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body) if self.body else None


Responder = Callable[[RecordedRequest], Reply] | Sequence[Reply]


class FakeOpenAI:
    """A running fake server; create it with `serve_openai`."""

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self._responder = responder
        self._script_pos = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = 0
        self._server = _Server(('127.0.0.1', 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name='fake-openai', daemon=True
        )

    @property
    def responder(self) -> Responder | None:
        """How requests are answered; setting it restarts a scripted list from its first reply."""
        return self._responder

    @responder.setter
    def responder(self, value: Responder | None) -> None:
        with self._lock:
            self._responder = value
            self._script_pos = 0

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """Base URL to give `OpenAIProvider(base_url=...)`."""
        return f'http://127.0.0.1:{self.port}/v1'

    def model(
        self, model_name: str = 'gpt-4o-mini', *, api_key: str = 'sk-fake-key', **provider_kw: Any
    ) -> OpenAIChatModel:
        """A real pydantic-ai `OpenAIChatModel` pointed at this server."""
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        return OpenAIChatModel(
            model_name, provider=OpenAIProvider(base_url=self.base_url, api_key=api_key, **provider_kw)
        )

    def start(self) -> FakeOpenAI:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled requests are released (their connections closed without an answer)."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            self._counter += 1
            responder = self._responder
            if responder is None:
                return Reply()
            if callable(responder):
                pass
            elif self._script_pos < len(responder):
                self._script_pos += 1
                return responder[self._script_pos - 1]
            else:
                return Reply.error(500, message=f'fake_openai: script exhausted after {len(responder)} replies')
        return responder(request)

    def _next_id(self) -> str:
        with self._lock:
            return f'chatcmpl-fake-{self._counter}'


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 20+ concurrent cases connect at once; the default backlog of 5 drops some
    daemon_threads = True
    fake: FakeOpenAI

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections pooled by a client would otherwise still be served after stop().
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server: _Server  # pyright: ignore[reportIncompatibleVariableOverride]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        if self.path.rstrip('/').endswith('/models'):
            self._send_json(200, {'object': 'list', 'data': []})
        else:
            self._send_json(404, {'error': {'message': f'fake_openai: no route GET {self.path}'}})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        request = RecordedRequest(
            method='POST', path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
        )
        reply = fake._next_reply(request)  # pyright: ignore[reportPrivateUsage]
        latency = fake.latency if reply.latency is None else reply.latency
        if latency and fake._stopping.wait(latency):  # pyright: ignore[reportPrivateUsage]
            return self._reset()
        if reply.fault == 'reset':
            return self._reset()
        if reply.fault == 'stall':
            fake._stopping.wait()  # pyright: ignore[reportPrivateUsage]
            return self._reset()
        if reply.status != 200:
            return self._send_json(reply.status, reply.body, reply.headers)
        if not self.path.split('?', 1)[0].rstrip('/').endswith('/chat/completions'):
            return self._send_json(404, {'error': {'message': f'fake_openai: no route POST {self.path}'}})
        payload: dict[str, Any] = request.json or {}
        model = str(payload.get('model', 'gpt-4o-mini'))
        if payload.get('stream'):
            stream_options: dict[str, Any] = payload.get('stream_options') or {}
            include_usage = bool(stream_options.get('include_usage'))
            self._send_stream(reply, model, fake._next_id(), include_usage)  # pyright: ignore[reportPrivateUsage]
        else:
            self._send_json(200, _completion(reply, model, fake._next_id()), reply.headers)  # pyright: ignore[reportPrivateUsage]

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, reply: Reply, model: str, completion_id: str, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
            event: dict[str, Any] = {
                'id': completion_id,
                'object': 'chat.completion.chunk',
                'created': created,
                'model': model,
                'choices': choices,
            }
            if usage is not None:
                event['usage'] = usage
            self._write_chunk(f'data: {json.dumps(event)}\n\n'.encode())

        chunk([{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}])
        content = reply.content or ''
        size = max(1, reply.chunk_size)
        for i in range(0, len(content), size):
            chunk([{'index': 0, 'delta': {'content': content[i : i + size]}, 'finish_reason': None}])
        for index, call in enumerate(reply.tool_calls):
            delta = {'tool_calls': [{'index': index, **_tool_call_json(call, index)}]}
            chunk([{'index': 0, 'delta': delta, 'finish_reason': None}])
        chunk([{'index': 0, 'delta': {}, 'finish_reason': _finish_reason(reply)}])
        if include_usage:
            chunk([], _usage(reply))
        self._write_chunk(b'data: [DONE]\n\n')
        self._write_chunk(b'')

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f'{len(data):x}\r\n'.encode() + data + b'\r\n')
        self.wfile.flush()


def _tool_call_json(call: ToolCall, index: int) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return {
        'id': call.id or f'call_{index}',
        'type': 'function',
        'function': {'name': call.name, 'arguments': arguments},
    }


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ('tool_calls' if reply.tool_calls else 'stop')


def _usage(reply: Reply) -> dict[str, int]:
    return {
        'prompt_tokens': reply.prompt_tokens,
        'completion_tokens': reply.completion_tokens,
        'total_tokens': reply.prompt_tokens + reply.completion_tokens,
    }


def _completion(reply: Reply, model: str, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {'role': 'assistant', 'content': reply.content}
    if reply.tool_calls:
        message['tool_calls'] = [_tool_call_json(c, i) for i, c in enumerate(reply.tool_calls)]
    return {
        'id': completion_id,
        'object': 'chat.completion',
        'created': int(time.time()),
        'model': model,
        'choices': [{'index': 0, 'message': message, 'finish_reason': _finish_reason(reply), 'logprobs': None}],
        'usage': _usage(reply),
    }


@contextmanager
def serve_openai(responder: Responder | None = None, *, latency: float = 0.0) -> Generator[FakeOpenAI]:
    """Run a fake OpenAI chat-completions server on 127.0.0.1 (random free port) for the duration of the block.

    Args:
        responder: replies in order (a list), or a callable given each `RecordedRequest`; `None` answers 'ok'.
        latency: seconds to wait before every answer (a `Reply` may override it).
    """
    server = FakeOpenAI(responder, latency=latency)
    with server:
        yield server
