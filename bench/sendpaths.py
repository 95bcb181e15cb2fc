"""The bare-socket experiment behind registry/zerocopy.py: one file sent over loopback to a client
process each way the server could send it, medians of several runs, with the client's CPU time.

    python -m bench.sendpaths [--size-mib 256] [--runs 7] [--hash]

Ways: `sendfile` (8 MiB per call) and `copy-N` (`pread` into an N-byte buffer, then `send` on a
non-blocking socket, waiting for writability as the event loop does). The client receives with
`recv_into` into 1 MiB; with `--hash` it also hashes each piece in turn, as the bench's verified pulls do.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import select
import socket
import statistics
import tempfile
import time
from pathlib import Path

WAYS = ("sendfile", "copy-131072", "copy-262144", "copy-524288", "copy-1048576")


def _serve(listener: socket.socket, path: Path, way: str) -> None:
    conn, _ = listener.accept()
    conn.recv(1)
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    offset = 0
    if way == "sendfile":
        while offset < size:
            offset += os.sendfile(conn.fileno(), fd, offset, min(8 << 20, size - offset))
    else:
        conn.setblocking(False)
        buffer = bytearray(int(way.split("-", 1)[1]))
        view = memoryview(buffer)
        while offset < size:
            count = os.preadv(fd, [buffer], offset)
            sent = 0
            while sent < count:
                try:
                    sent += conn.send(view[sent:count])
                except BlockingIOError:
                    select.select([], [conn], [])
            offset += count
    conn.close()
    os._exit(0)


def run_once(path: Path, way: str, hash_client: bool) -> tuple[float, float]:
    """(MB/s, client CPU seconds) for one transfer of the file at `path`."""
    size = path.stat().st_size
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    pid = os.fork()
    if pid == 0:
        _serve(listener, path, way)
    address = listener.getsockname()
    listener.close()
    client = socket.create_connection(address)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    hasher = hashlib.sha256() if hash_client else None
    client.sendall(b"x")
    started, cpu = time.perf_counter(), time.process_time()
    received = 0
    while received < size:
        count = client.recv_into(buffer)
        if not count:
            break
        received += count
        if hasher is not None:
            hasher.update(view[:count])
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    client.close()
    os.waitpid(pid, 0)
    if received != size:
        raise SystemExit(f"{way}: {received} of {size} bytes")
    return size / seconds / 1e6, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sendpaths", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--hash", action="store_true", help="the client hashes each piece in turn (sha256)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "blob"
        path.write_bytes(os.urandom(args.size_mib << 20))
        client = "hashes" if args.hash else "only receives"
        print(f"{args.size_mib} MiB over loopback, {args.runs} runs each, medians; the client {client}")
        for way in WAYS:
            results = [run_once(path, way, args.hash) for _ in range(args.runs)]
            rates = [rate for rate, _ in results]
            print(
                f"{way:>14}: {statistics.median(rates):8,.0f} MB/s (min {min(rates):,.0f}, max {max(rates):,.0f}),"
                f" client CPU {statistics.median(cpu for _, cpu in results):.3f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
