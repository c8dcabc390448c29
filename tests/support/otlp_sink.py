"""A healthy OTLP/HTTP traces endpoint on 127.0.0.1 that keeps what it receives (see broken_endpoints for the others)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Generator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ('otlp_sink',)


@contextmanager
def otlp_sink() -> Generator[tuple[str, list[bytes]]]:
    """A healthy OTLP/HTTP traces endpoint on 127.0.0.1; yields its URL and the bodies it received (inflated)."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
            bodies.append(gzip.decompress(body) if self.headers.get('Content-Encoding') == 'gzip' else body)
            self.send_response(200)
            self.send_header('Content-Type', 'application/x-protobuf')
            self.send_header('Content-Length', '0')
            self.end_headers()

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/v1/traces', bodies
    finally:
        server.shutdown()
        server.server_close()
