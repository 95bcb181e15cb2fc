"""The machine's physical limits, measured in the same run: each figure is read as a fraction of them."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

_BLOCK = 1024 * 1024

_SENDER = """
import socket, sys
port, total = int(sys.argv[1]), int(sys.argv[2])
block = b"x" * (1 << 20)
with socket.create_connection(("127.0.0.1", port)) as sock:
    for _ in range(total // len(block)):
        sock.sendall(block)
"""


def sha256_mbps(size: int = 512 * _BLOCK) -> float:
    """hashlib sha256 on one core, fed 1 MiB blocks."""
    block = os.urandom(_BLOCK)
    hasher = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(size // _BLOCK):
        hasher.update(block)
    return size / (time.perf_counter() - started) / 1e6


def loopback_mbps(size: int = 2048 * _BLOCK) -> float:
    """Raw TCP over loopback from one process to another (sendall and recv_into, 1 MiB blocks)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sender = subprocess.Popen([sys.executable, "-c", _SENDER, str(port), str(size)])
        conn, _ = listener.accept()
        buffer = memoryview(bytearray(_BLOCK))
        received = 0
        with conn:
            started = time.perf_counter()
            while True:
                count = conn.recv_into(buffer)
                if not count:
                    break
                received += count
            elapsed = time.perf_counter() - started
        sender.wait(30)
    if received != size:
        raise RuntimeError(f"loopback ceiling: received {received} of {size} bytes")
    return size / elapsed / 1e6


def fsync_write_mbps(directory: Path, size: int = 256 * _BLOCK) -> float:
    """Sequential write of `size` bytes in 1 MiB blocks to a new file in `directory`, then fsync."""
    path = directory / f"ceiling-{os.getpid()}.tmp"
    block = os.urandom(_BLOCK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(size // _BLOCK):
            os.write(fd, block)
        os.fsync(fd)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return size / elapsed / 1e6


def measure(directory: Path, tries: int = 3) -> dict[str, float]:
    """The best of `tries` measurements of each: a ceiling is what the machine can do, and on a shared
    machine a single try often catches it busy."""
    return {
        "sha256_mbps": max(sha256_mbps() for _ in range(tries)),
        "loopback_mbps": max(loopback_mbps() for _ in range(tries)),
        "fsync_write_mbps": max(fsync_write_mbps(directory) for _ in range(tries)),
    }
