"""A tiny HTTP CONNECT proxy that tunnels a made-up host name to a loopback port.

The Docker engine treats every registry whose name resolves into 127.0.0.0/8 as insecure and then
skips certificate checks. To see it verify our CA from `/etc/docker/certs.d/HOST:PORT/ca.crt`,
the tests give the registry a name that does not resolve and point the engine's `HTTPS_PROXY`
here; only the configured names are tunnelled, and only to loopback.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from collections.abc import Iterator, Mapping


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        # A client or server hanging up mid-tunnel is normal (Docker closes idle connections).
        with contextlib.suppress(OSError):
            self._tunnel()

    def _tunnel(self) -> None:
        client: socket.socket = self.request
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > 65536:
                return
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        target = self.server.routes.get(line[1]) if len(line) == 3 and line[0] == "CONNECT" else None
        if target is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(target, timeout=30) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            client.settimeout(None)
            upstream.settimeout(None)
            _pump(client, upstream)


def _pump(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 120)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    routes: Mapping[str, tuple[str, int]]


@contextlib.contextmanager
def connect_proxy(routes: Mapping[str, tuple[str, int]]) -> Iterator[str]:
    """Run the proxy on a free loopback port; yields its URL for HTTPS_PROXY."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes = dict(routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
