"""The two ways registry/zerocopy.py sends a file, each on a real loopback connection driven by a
real asyncio transport: copied through one of a worker's reusable buffers (a block the page cache
lacks is read in a thread), and, when every buffer is in use, with sendfile(2)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from registry import zerocopy
from registry.zerocopy import BufferPool, SocketRef, send_file, socket_ref

SIZE = 5 * 1024 * 1024 + 4321  # not a multiple of the copy block, so the last block is short


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, str]:
    data = os.urandom(SIZE)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting the calls handed to it."""

    def __init__(self) -> None:
        super().__init__(2)
        self.calls: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


def _receive(sock: socket.socket, out: list[bytes]) -> None:
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    out.append(b"".join(chunks))


async def _send_over_loopback(path: Path, pool: BufferPool, executor: CountingExecutor) -> tuple[int, bytes]:
    """Serve one connection: send the file with `send_file` on the accepted transport, then close."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(executor)
    accepted: asyncio.Future[asyncio.WriteTransport] = loop.create_future()

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.WriteTransport)
            accepted.set_result(transport)

    server = await loop.create_server(Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    received: list[bytes] = []
    reader = threading.Thread(target=_receive, args=(client, received))
    reader.start()
    transport = await accepted
    transport.write(b"head:")  # bytes the transport holds go out first
    ref = socket_ref(transport)
    assert isinstance(ref, SocketRef)
    sent = await send_file(transport, ref, str(path), SIZE, lambda: False, pool)
    transport.close()
    await asyncio.to_thread(reader.join, 30)
    client.close()
    server.close()
    await server.wait_closed()
    return sent, received[0]


def _check(received: bytes, digest: str) -> None:
    assert received[:5] == b"head:"
    assert len(received) == 5 + SIZE
    assert hashlib.sha256(received[5:]).hexdigest() == digest


def test_a_free_buffer_copies_the_file_and_returns_to_the_pool(blob: tuple[Path, str]) -> None:
    path, digest = blob
    pool = BufferPool(count=1)
    with pool.take():
        pass  # the one buffer now exists and is free
    executor = CountingExecutor()
    sent, received = asyncio.run(_send_over_loopback(path, pool, executor))
    assert sent == SIZE
    _check(received, digest)
    with pool.take() as again, pool.take() as none_left:
        assert again is not None and len(again) == zerocopy.COPY_BLOCK  # back in the pool, reused
        assert none_left is None  # and still the only one


def test_with_every_buffer_in_use_the_kernel_sends_the_file(blob: tuple[Path, str]) -> None:
    path, digest = blob
    pool = BufferPool(count=0)
    executor = CountingExecutor()
    sent, received = asyncio.run(_send_over_loopback(path, pool, executor))
    assert sent == SIZE
    _check(received, digest)
    assert "preadv" not in executor.calls  # sendfile: no reads of ours at all


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="needs preadv2's RWF_NOWAIT (Linux)")
def test_blocks_missing_from_the_page_cache_are_read_in_a_thread(blob: tuple[Path, str]) -> None:
    path, digest = blob
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
            pytest.skip(f"the filesystem under {path.parent} keeps the file cached (tmpfs?)")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
    executor = CountingExecutor()
    sent, received = asyncio.run(_send_over_loopback(path, BufferPool(count=1), executor))
    assert sent == SIZE
    _check(received, digest)
    assert "preadv" in executor.calls  # the cold blocks went to a thread, not the event loop
