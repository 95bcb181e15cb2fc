"""A small HTTP reverse proxy for tests, between a registry mirror and its upstream: it forwards
every request, counts them, and injects the faults a test asks for (drop the connection, delay,
answer a status such as 429 with Retry-After, truncate or corrupt a body)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from tests.servers import free_port

FaultKind = Literal["drop", "delay", "status", "truncate", "corrupt", "slow", "pause"]
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})
_PIECE = 64 * 1024


@dataclass
class Fault:
    kind: FaultKind
    path: str = ""  # applies to requests whose path contains this
    method: str | None = None
    seconds: float = 0.0  # delay: before answering; slow: between pieces of the body
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    # pause: half the body goes out, then the rest once the test sets this
    gate: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # host:port
        self.port = free_port()
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.relayed: dict[str, int] = {}  # body bytes sent so far, by path
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, method: str, contains: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and contains in p)

    def sent(self, contains: str) -> int:
        with self._lock:
            return sum(n for p, n in self.relayed.items() if contains in p)

    def _relayed(self, path: str, count: int) -> None:
        with self._lock:
            self.relayed[path] = self.relayed.get(path, 0) + count

    def _record(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.path in path and (fault.method is None or fault.method == method):
                    return fault
        return None


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._forward()

        def do_HEAD(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_PUT(self) -> None:
            self._forward()

        def do_PATCH(self) -> None:
            self._forward()

        def do_DELETE(self) -> None:
            self._forward()

        def _forward(self) -> None:
            fault = proxy._record(self.command, self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault is not None and fault.kind == "status":
                payload = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}'
                self.send_response(fault.status)
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
            try:
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                except OSError:  # the upstream itself is down: what a gateway answers
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._relay(response, fault)
            except OSError:
                self.close_connection = True  # the mirror went away mid-answer
            finally:
                upstream.close()

        def _relay(self, response: http.client.HTTPResponse, fault: Fault | None) -> None:
            announced = response.getheader("content-length")
            data = b"" if self.command == "HEAD" else response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", announced if self.command == "HEAD" and announced else str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            kind = fault.kind if fault is not None else None
            if kind == "corrupt" and data:
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            if kind == "truncate":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            half = len(data) // 2
            for start in range(0, len(data), _PIECE):
                if kind == "pause" and start >= half and fault is not None:
                    fault.gate.wait(120)
                    kind = None
                self.wfile.write(data[start : start + _PIECE])
                self.wfile.flush()
                proxy._relayed(self.path, len(data[start : start + _PIECE]))
                if kind == "slow":
                    time.sleep(fault.seconds if fault is not None else 0)

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
