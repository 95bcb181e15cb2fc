"""Whole files sent straight from the page cache to the socket: the ASGI `http.response.pathsend`
extension on uvicorn's httptools protocol.

The app sends `http.response.start` (headers, with the Content-Length of the file) and then
`{"type": "http.response.pathsend", "path": ...}`. The headers go out through the transport as
usual; once the transport has written everything it holds, the file goes to the socket without
passing through Python objects, on a duplicate of the socket's descriptor so the event loop can
wait for it to be writable without touching the transport's own registration.

Two ways, measured (bench/README.md): `pread` into a 256 KiB buffer and `write` it, which is about
twice as fast for one stream on loopback and costs the server less CPU than sendfile(2) does,
because the receiver copies bytes that are still in the CPU's cache rather than cold page-cache
pages; and `sendfile`, which needs no buffer. A worker keeps a few buffers; a send that finds none
free uses sendfile, so memory stays bounded however many pulls run. A block not in the page cache
is read in a thread (`RWF_NOWAIT` tells), so a cold disk never stalls the event loop. Nothing else
writes to the connection meanwhile: HTTP/1.1 answers one request at a time, and uvicorn starts a
pipelined request only when this response is complete. The body is then finished through the
transport's ordinary path (an empty last `http.response.body`), so keep-alive, `Connection:
close` and drain-on-shutdown behave as for any response.

Offered only on plain-HTTP connections with a socket: under TLS the bytes must pass through the
TLS layer, and the app falls back to streaming the file itself.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATHSEND = "http.response.pathsend"

# Bytes per sendfile call: the loop runs other connections between calls.
_CALL_BYTES = 8 * 1024 * 1024
_RECHECK_SECONDS = 1.0
# The copy path's block (the fastest of 128 KiB to 1 MiB measured), and how many blocks a worker keeps.
COPY_BLOCK = 256 * 1024
COPY_BUFFERS = 4


class BufferPool:
    """At most `count` reusable blocks of `size` bytes; `take` yields None when all are in use."""

    def __init__(self, count: int = COPY_BUFFERS, size: int = COPY_BLOCK) -> None:
        self.size = size
        self._free: list[bytearray] = []
        self._unmade = count

    @contextmanager
    def take(self) -> Iterator[bytearray | None]:
        if self._free:
            buffer: bytearray | None = self._free.pop()
        elif self._unmade:
            self._unmade -= 1
            buffer = bytearray(self.size)
        else:
            buffer = None
        try:
            yield buffer
        finally:
            if buffer is not None:
                self._free.append(buffer)


_POOL = BufferPool()
# Cleared when the filesystem holding blobs refuses RWF_NOWAIT: every read then goes to a thread.
_nowait = hasattr(os, "RWF_NOWAIT")


@dataclass(frozen=True)
class SocketRef:
    """A connection's socket descriptor, and the socket's inode to tell it from a later socket
    that gets the same descriptor number once the transport has closed this one."""

    fd: int
    inode: int

    def dup(self) -> int | None:
        """A duplicate descriptor of this socket, or None if the number now names another file."""
        try:
            out = os.dup(self.fd)
        except OSError:
            return None
        if os.fstat(out).st_ino != self.inode:
            os.close(out)
            return None
        return out


def socket_ref(transport: asyncio.BaseTransport) -> SocketRef | None:
    """The socket zero-copy sends can write to, or None (TLS, or no socket)."""
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    fd = sock.fileno()
    if not isinstance(fd, int) or fd < 0:
        return None
    try:
        return SocketRef(fd, os.fstat(fd).st_ino)
    except OSError:
        return None


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until `fd` can take more bytes, or a second has passed (the caller checks whether to stop)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    timer = loop.call_later(_RECHECK_SECONDS, wake)
    try:
        await ready
    finally:
        timer.cancel()
        loop.remove_writer(fd)


async def send_file(
    transport: asyncio.WriteTransport,
    sock: SocketRef,
    path: str,
    count: int,
    stopped: Callable[[], bool],
    pool: BufferPool | None = None,
) -> int:
    """Send the first `count` bytes of the file at `path` on `sock`, after whatever the transport
    still buffers; the number of bytes sent (less than `count` if the peer went away, `stopped()`
    turned true, or the file is shorter)."""
    if stopped() or transport.is_closing():
        return 0
    loop = asyncio.get_running_loop()
    file = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = sock.dup()
        if out is None:
            return 0
        try:
            return await _send(loop, transport, out, file, count, stopped, pool or _POOL)
        finally:
            os.close(out)
    finally:
        os.close(file)


async def _send(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.WriteTransport,
    out: int,
    file: int,
    count: int,
    stopped: Callable[[], bool],
    pool: BufferPool,
) -> int:
    while transport.get_write_buffer_size() and not stopped():
        await _writable(loop, out)
        await asyncio.sleep(0)  # the transport writes its buffer in its own turn
    with pool.take() as buffer:
        if buffer is not None:
            return await _copy(loop, out, file, count, stopped, memoryview(buffer))
    return await _sendfile(loop, out, file, count, stopped)


async def _read(loop: asyncio.AbstractEventLoop, file: int, block: memoryview, offset: int) -> int:
    """Read into `block` at `offset`: in the loop when the page cache holds it, else in a thread."""
    global _nowait
    if _nowait:
        try:
            return os.preadv(file, [block], offset, os.RWF_NOWAIT)
        except BlockingIOError:
            pass
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            _nowait = False
    reading = loop.run_in_executor(None, os.preadv, file, [block], offset)
    try:
        return await asyncio.shield(reading)
    except asyncio.CancelledError:
        await asyncio.wait([reading])  # the thread still writes into the block and reads the file
        raise


async def _copy(
    loop: asyncio.AbstractEventLoop, out: int, file: int, count: int, stopped: Callable[[], bool], buffer: memoryview
) -> int:
    sent = 0
    while sent < count and not stopped():
        n = await _read(loop, file, buffer[: min(count - sent, len(buffer))], sent)
        if n == 0:
            break
        written = 0
        while written < n:
            if stopped():
                return sent + written
            try:
                written += os.write(out, buffer[written:n])
            except BlockingIOError:
                await _writable(loop, out)
            except (BrokenPipeError, ConnectionError):
                return sent + written
        sent += n
        await asyncio.sleep(0)
    return sent


async def _sendfile(
    loop: asyncio.AbstractEventLoop, out: int, file: int, count: int, stopped: Callable[[], bool]
) -> int:
    sent = 0
    while sent < count and not stopped():
        try:
            n = os.sendfile(out, file, sent, min(count - sent, _CALL_BYTES))
        except BlockingIOError:
            await _writable(loop, out)
            continue
        except (BrokenPipeError, ConnectionError):
            break
        if n == 0:
            break
        sent += n
        await asyncio.sleep(0)
    return sent


class ZeroCopyCycle:
    """The connection state `send_file` needs from uvicorn's request-response cycle."""

    disconnected: bool
    expected_content_length: int


class ZeroCopyApp:
    """Wraps the app for one request on one connection: offers `http.response.pathsend` in the
    scope's extensions and carries it out with `send_file`."""

    def __init__(self, app: ASGIApp, transport: asyncio.WriteTransport, sock: SocketRef, cycle: ZeroCopyCycle) -> None:
        self.app = app
        self.transport = transport
        self.sock = sock
        self.cycle = cycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})[PATHSEND] = {}

        async def zero_copy_send(message: Message) -> None:
            if message["type"] != PATHSEND:
                await send(message)
                return
            cycle = self.cycle
            count = cycle.expected_content_length
            sent = await send_file(self.transport, self.sock, message["path"], count, lambda: cycle.disconnected)
            if sent < count:
                # A short body cannot be finished: the client sees the connection end early.
                self.transport.close()
                cycle.disconnected = True
                return
            cycle.expected_content_length = 0
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app(scope, receive, zero_copy_send)
