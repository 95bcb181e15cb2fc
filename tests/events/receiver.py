"""A webhook receiver for the tests: an HTTP server on 127.0.0.1 that records what it is sent and
answers as told (accept, fail with a status, or hang past the sender's timeout)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port, wait_for


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The distribution events in the body: an envelope's, a CloudEvent's data, or a CloudEvents batch's."""
        document = self.json
        if isinstance(document, list):
            return [item["data"] for item in document]
        return list(document["events"]) if "events" in document else [document["data"]]


class Receiver:
    """`answer(attempt_number, path)` gives the status to answer (0: hang until the client gives up)."""

    def __init__(self, port: int | None = None, answer: Callable[[int, str], int] | None = None) -> None:
        self.port = port or free_port()
        self.answer = answer or (lambda attempt, path: 200)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = receiver.answer(len(receiver.deliveries) + 1, self.path)
                    receiver.deliveries.append(Delivery(self.path, dict(self.headers), body, status))
                if status == 0:
                    receiver._release.wait(30)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every event accepted (2xx), in arrival order."""
        with self._lock:
            found = [d for d in self.deliveries if 200 <= d.status < 300 and (path is None or d.path == path)]
        return [event for delivery in found for event in delivery.events]

    def attempts(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def wait_accepted(self, count: int, path: str | None = None, timeout: float = 60) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.accepted(path)) >= count, timeout, f"{count} events at the receiver")
        return self.accepted(path)

    def settle(self, seconds: float = 1.5) -> None:
        """Let anything still in flight arrive (used only before asserting that nothing more came)."""
        time.sleep(seconds)
