"""The HTTP protocol `dockyard serve` runs: uvicorn's httptools protocol, plus a quiet answer to a
TLS handshake on the plain-HTTP port.

Docker tries HTTPS first against a registry it does not know to be insecure, so every pull from such
a client opens with a TLS ClientHello. uvicorn would log "Invalid HTTP request received." as a
WARNING for each of those connections; here the client gets the same 400 and the log gets one line
per client address per minute, saying what happened.

It also offers the app zero-copy file sends (`http.response.pathsend`, registry/zerocopy.py) on
plain-HTTP connections."""

from __future__ import annotations

import asyncio
import logging
import time

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from registry.zerocopy import ZeroCopyApp, socket_ref

log = logging.getLogger("dockyard.server")

# Within this many seconds, further handshakes from one address are answered but not logged.
QUIET_SECONDS = 60.0
_MAX_ADDRESSES = 4096  # a bound on the memory of who was logged, whatever the number of clients


def is_tls_handshake(data: bytes) -> bool:
    """A TLS record carrying a handshake (content type 22, protocol major version 3): a ClientHello."""
    return len(data) >= 2 and data[0] == 0x16 and data[1] == 0x03


class HandshakeLog:
    """Who sent a TLS handshake lately: `should_log` is true once per address per `QUIET_SECONDS`."""

    def __init__(self, quiet: float = QUIET_SECONDS) -> None:
        self.quiet = quiet
        self._last: dict[str, float] = {}

    def should_log(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._last.get(address)
        if last is not None and now - last < self.quiet:
            return False
        if len(self._last) >= _MAX_ADDRESSES:
            self._last = {a: t for a, t in self._last.items() if now - t < self.quiet}
            if len(self._last) >= _MAX_ADDRESSES:
                self._last.clear()
        self._last[address] = now
        return True


_handshakes = HandshakeLog()


class PlainPortProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._first_data = True
        self._sendfile_socket = socket_ref(transport) if self.scheme == "http" else None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if self._sendfile_socket is not None:
            app = ZeroCopyApp(app, self.transport, self._sendfile_socket, cycle)  # type: ignore[arg-type,assignment]
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        first, self._first_data = self._first_data, False
        if first and self.scheme == "http" and is_tls_handshake(data):
            address = self.client[0] if self.client else "unknown"
            if _handshakes.should_log(address):
                log.warning(
                    "TLS handshake from %s on the plain-HTTP port: that client expects HTTPS (configure "
                    "http.tls, or mark this registry insecure on the client); answered 400, and further "
                    "ones from %s within %ds are not logged",
                    address,
                    address,
                    int(_handshakes.quiet),
                )
            self.send_400_response("This port speaks plain HTTP, not TLS.")
            return
        super().data_received(data)
