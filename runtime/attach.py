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

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "Detached",
    "Frame",
    "Kind",
    "Outcome",
    "parse_detach_keys",
    "read_frame",
    "relay",
    "send_frame",
]

DEFAULT_DETACH_KEYS = b"\x10\x11"  # Ctrl-P Ctrl-Q, as Docker
# Docker's names for the control characters, in code order (moby/term ASCII).
_CTRL_NAMES = [
    "ctrl-@",
    *(f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)),
    *("ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"),
]


class Detached(Exception):
    """The user typed the detach keys: the container goes on without this client."""


def parse_detach_keys(text: str) -> bytes:
    """--detach-keys "ctrl-p,ctrl-q" (a comma-separated list of ctrl-KEY names and single characters)."""
    codes = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            codes += key.encode()
        elif key in _CTRL_NAMES:
            codes.append(_CTRL_NAMES.index(key))
        else:
            raise ValueError(f"Invalid detach keys ({text}) provided")
    return bytes(codes)


class _DetachScanner:
    """Holds back input that may be the start of the detach sequence, as Docker's escape proxy does."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """The bytes to forward, and whether the whole sequence was typed."""
        out = bytearray()
        for byte in data:
            if self.keys and byte == self.keys[len(self.held)]:
                self.held += bytes([byte])
                if len(self.held) == len(self.keys):
                    return bytes(out), True
                continue
            out += self.held + bytes([byte])
            self.held = b""
        return bytes(out), False


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


def relay(
    sock: socket.socket,
    stdin: bool,
    terminal: bool,
    close_stdin: bool = True,
    detach_keys: bytes = DEFAULT_DETACH_KEYS,
) -> int | None:
    """Pipe our stdio to and from the supervisor until the container exits (its code) or the
    connection drops (None). At EOF on our stdin the container's stdin is closed only with
    `close_stdin` (`run -i`; `attach` leaves it open, as Docker). Raises Detached when the
    detach keys are typed."""
    scanner = _DetachScanner(detach_keys)
    detached = threading.Event()
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
                    if close_stdin:
                        send_frame(sock, Kind.STDIN_EOF)
                    return
                data, detach = scanner.feed(data)
                if data:
                    send_frame(sock, Kind.STDIN, data)
                if detach:
                    detached.set()
                    sock.shutdown(socket.SHUT_RDWR)
                    return

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
    if detached.is_set():
        raise Detached()
    return code


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
