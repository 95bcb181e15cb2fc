"""The attach protocol between a container's supervisor and the CLIs attached to it: frames of a
1-byte kind, a 4-byte big-endian length and the payload, over a Unix socket. The CLI side relays
its own stdin, stdout, stderr and terminal size (raw mode on a terminal, SIGWINCH forwarded)."""

from __future__ import annotations

import contextlib
import enum
import os
import select
import signal
import socket
import struct
import sys
import termios
import threading
import tty
from dataclasses import dataclass

__all__ = ["Frame", "Kind", "Outcome", "read_frame", "relay", "send_frame"]

_HEADER = struct.Struct(">BI")


class Kind(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    EXIT = 3  # payload: the exit code
    RESIZE = 4  # payload: struct winsize
    STARTED = 6
    ERROR = 7  # payload: "<exit code> <message>"
    STDIN_EOF = 8


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes


def send_frame(sock: socket.socket, kind: Kind, payload: bytes = b"") -> None:
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> Frame | None:
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    kind, size = _HEADER.unpack(header)
    payload = _recv_exact(sock, size) if size else b""
    if payload is None:
        return None
    return Frame(Kind(kind), payload)


@dataclass(frozen=True)
class Outcome:
    started: bool
    exit_code: int | None
    error: str = ""


def wait_started(sock: socket.socket) -> Outcome:
    """Read frames until the container started or failed to; output frames are not expected yet."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return Outcome(False, 125, "the container's supervisor exited unexpectedly")
        if frame.kind == Kind.STARTED:
            return Outcome(True, None)
        if frame.kind == Kind.ERROR:
            code, _, message = frame.payload.decode(errors="replace").partition(" ")
            return Outcome(False, int(code), message)


def relay(sock: socket.socket, stdin: bool, terminal: bool) -> int | None:
    """Pipe our stdio to and from the supervisor until the container exits (its code) or the
    connection drops (None)."""
    in_fd, out_fd, err_fd = sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno()
    is_tty = terminal and os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if is_tty else None
    previous_winch = None
    stop_r, stop_w = os.pipe()

    def resize(*_: object) -> None:
        with contextlib.suppress(OSError):
            from runtime.process import winsize

            send_frame(sock, Kind.RESIZE, winsize(in_fd))

    if is_tty:
        resize()
        previous_winch = signal.signal(signal.SIGWINCH, resize)
        tty.setraw(in_fd)

    def pump_stdin() -> None:
        with contextlib.suppress(OSError):
            while True:
                ready, _, _ = select.select([in_fd, stop_r], [], [])
                if stop_r in ready:
                    return
                data = os.read(in_fd, 65536)
                if not data:
                    send_frame(sock, Kind.STDIN_EOF)
                    return
                send_frame(sock, Kind.STDIN, data)

    reader = threading.Thread(target=pump_stdin, daemon=True) if stdin else None
    if reader is not None:
        reader.start()
    code: int | None = None
    try:
        while (frame := read_frame(sock)) is not None:
            if frame.kind in (Kind.STDOUT, Kind.STDERR):
                _write_all(out_fd if frame.kind == Kind.STDOUT else err_fd, frame.payload)
            elif frame.kind == Kind.EXIT:
                code = int(frame.payload)
                break
    except OSError:
        pass
    finally:
        os.write(stop_w, b"x")
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        if previous_winch is not None:
            signal.signal(signal.SIGWINCH, previous_winch)
    return code


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
