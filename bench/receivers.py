"""Webhook receivers for the notifications benchmark: HTTP servers on loopback, in the bench
process, that accept every event (as a fast CI hook would) and count them."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receivers:
    """`count` receivers on 127.0.0.1; `urls` to configure, `received` events so far per receiver."""

    def __init__(self, count: int = 2) -> None:
        self._servers: list[ThreadingHTTPServer] = []
        self.received = [0] * count
        received = self.received
        lock = threading.Lock()
        for index in range(count):

            class Handler(BaseHTTPRequestHandler):
                slot = index

                def do_POST(self) -> None:
                    self.rfile.read(int(self.headers.get("content-length", "0")))
                    with lock:
                        received[self.slot] += 1
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, format: str, *args: Any) -> None:
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{server.server_address[1]}/hook" for server in self._servers]

    def config(self) -> str:
        """The `notifications` section naming every receiver (YAML, appended to a server's config)."""
        lines = ["notifications:", "  endpoints:"]
        for index, url in enumerate(self.urls):
            lines += [f"    - name: bench{index}", f"      url: {url}", "      timeout: 2s"]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
