"""A small threaded HTTPS server: requests in, ``Response`` out, keep-alive, TLS per connection.

The TLS handshake runs in the connection's own thread (not in ``accept``), so one slow client
never stalls the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass
class Request:
    """One HTTP request as the apps see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """One HTTP response."""

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, headers=dict(headers or {}))


Handler = Callable[[Request], Response]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms for
    # the delayed ACK on every response.
    disable_nagle_algorithm = True
    server: HttpsServer

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request lines would drown a benchmark; debug only.
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = Request(
            self.command,
            parts.path,
            query,
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        try:
            resp = self.server.app(req)
        except Exception:
            log.exception("sandbox handler failed for %s %s", self.command, parts.path)
            resp = json_response(
                500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "sandbox internal error"}]
            )
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class HttpsServer(ThreadingHTTPServer):
    """A threaded HTTPS server on 127.0.0.1 dispatching every request to ``app``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, app: Handler, context: ssl.SSLContext) -> None:
        self.app = app
        self.context = context
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.thread: threading.Thread | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap the accepted socket in TLS in the connection's thread, then serve it."""
        try:
            request.settimeout(60)
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.shutdown(socket.SHUT_RDWR)
            tls.close()

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context with the given certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
