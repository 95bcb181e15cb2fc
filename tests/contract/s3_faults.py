"""An HTTP proxy in front of an S3 endpoint that injects the failures S3 clients meet: throttling
(503 SlowDown), connections dropped before the request is served or in the middle of a response
body, and refusals (403 AccessDenied)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# What to do with the n-th request (counted from 1) of a given method: "pass", "slowdown",
# "reset", "truncate" (the response body stops half-way) or "deny".
Plan = Callable[[int, str], str]

_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "deny": (403, "AccessDenied", "Access Denied"),
}


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan) -> None:
        self.upstream = urlsplit(upstream)
        self.plan = plan
        self.count = 0
        self.injected: list[str] = []
        self._lock = threading.Lock()

    def decide(self, method: str) -> str:
        with self._lock:
            self.count += 1
            action = self.plan(self.count, method)
            if action != "pass":
                self.injected.append(action)
            return action


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action = proxy.decide(self.command)
            if action == "reset":
                self.close_connection = True
                self.connection.close()
                return
            if action in _ERRORS:
                status, code, message = _ERRORS[action]
                xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                self.wfile.write(xml)
                return
            upstream = http.client.HTTPConnection(proxy.upstream.hostname or "", proxy.upstream.port, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if action == "truncate" and self.command == "GET" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.close()
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def fault_proxy(upstream: str, plan: Plan) -> Iterator[tuple[str, FaultProxy]]:
    proxy = FaultProxy(upstream, plan)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
