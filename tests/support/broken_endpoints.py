"""Broken telemetry endpoints on 127.0.0.1: refusing (reset), refusing after a second (late reset), 503,
accept-and-never-answer, and a closed port."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ('broken_endpoint',)


@contextmanager
def broken_endpoint(mode: str) -> Iterator[str]:
    """Yield the OTLP traces URL of an endpoint that fails in the given way: closed, reset, late reset, 503 or hang."""
    if mode == 'closed':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        yield f'http://127.0.0.1:{port}/v1/traces'
        return
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            if mode == 'hang':
                stop.wait()
                return
            if mode == 'late reset':
                stop.wait(1.0)
            if mode in ('reset', 'late reset'):
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                self.connection.close()
                return
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            self.send_response(503)
            self.send_header('Content-Length', '0')
            self.end_headers()

        # Logfire's token check is a GET (`/v1/info`): it fails the same way.
        do_GET = do_POST

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/v1/traces'
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
