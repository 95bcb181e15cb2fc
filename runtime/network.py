"""Container networking without addresses of its own: `none` and `private` get a fresh network
namespace with only loopback (brought up here), `host` shares the host's. Published ports are a
userspace forwarder, the way rootless port drivers work: it accepts on the host and dials the
container's own 127.0.0.1 from a socket created inside the container's network namespace. UDP is
relayed per client address: each client gets its own socket in the container, whose replies go
back to that client from the published port."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from runtime import syscalls
from runtime.namespaces import Namespace
from runtime.spec import PortMapping

__all__ = ["PortForwarder", "loopback_up"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_UDP_IDLE = 120.0  # seconds: conntrack's default for an unanswered UDP flow is 30, an answered one 120


def loopback_up() -> None:
    """Bring `lo` up in the current network namespace (netdevice(7), SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


class PortForwarder:
    """Listens on each mapping's host address and pipes every connection to the container's
    loopback. Threads only: the process that owns it may already sit in a new PID namespace."""

    def __init__(self, mappings: tuple[PortMapping, ...]) -> None:
        """Bind every host address now, so that a port in use fails before the container starts.
        A host port of 0 takes any free port; `published` tells which."""
        self._mappings = mappings
        self._netns = -1
        self._hostns = -1
        self._address = "127.0.0.1"
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._closed = False
        self.published: list[PortMapping] = []
        try:
            for m in mappings:
                family = socket.AF_INET6 if ":" in m.host_ip else socket.AF_INET
                kind = socket.SOCK_DGRAM if m.protocol == "udp" else socket.SOCK_STREAM
                listener = socket.socket(family, kind)
                self._listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((m.host_ip, m.host_port))
                if kind == socket.SOCK_STREAM:
                    listener.listen(128)
                self.published.append(dataclasses.replace(m, host_port=listener.getsockname()[1]))
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, f"cannot publish {m.host_ip}:{m.host_port}: {exc.strerror}") from None

    def start(self, netns: int, address: str = "127.0.0.1") -> None:
        """Serve connections into the network namespace open as `netns` (the fd is duplicated),
        dialling `address` there: its loopback, or its address on a bridge network, where a
        server may listen on that interface only."""
        self._netns = os.dup(netns)
        self._address = address
        self._hostns = os.open(Namespace.NET.path("thread-self"), os.O_RDONLY | os.O_CLOEXEC)
        for listener, m in zip(self._listeners, self._mappings, strict=True):
            loop = self._udp_loop if m.protocol == "udp" else self._accept_loop
            self._spawn(loop, listener, m.container_port)

    @staticmethod
    def _spawn(target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _dial(self, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
        # setns(2) with CLONE_NEWNET changes only the calling thread; a socket keeps the namespace
        # it was created in, so it can be used after switching back.
        with self._lock:
            syscalls.setns(self._netns, Namespace.NET.flag)
            try:
                sock = socket.socket(socket.AF_INET, kind)
            finally:
                syscalls.setns(self._hostns, Namespace.NET.flag)
        try:
            sock.connect((self._address, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _accept_loop(self, listener: socket.socket, port: int) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._spawn(self._serve, client, port)

    def _serve(self, client: socket.socket, port: int) -> None:
        try:
            upstream = self._dial(port)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def _udp_loop(self, listener: socket.socket, port: int) -> None:
        upstreams: dict[tuple[Any, ...], socket.socket] = {}
        lock = threading.Lock()
        while not self._closed:
            try:
                data, client = listener.recvfrom(65535)
            except OSError:
                break
            with lock:
                upstream = upstreams.get(client)
            if upstream is None:
                try:
                    upstream = self._dial(port, socket.SOCK_DGRAM)
                except OSError:
                    continue
                upstream.settimeout(_UDP_IDLE)
                with lock:
                    upstreams[client] = upstream
                self._spawn(self._udp_replies, upstream, listener, client, upstreams, lock)
            with contextlib.suppress(OSError):
                upstream.send(data)
        with lock:
            for upstream in upstreams.values():
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_RDWR)
                upstream.close()

    def _udp_replies(
        self,
        upstream: socket.socket,
        listener: socket.socket,
        client: tuple[Any, ...],
        upstreams: dict[tuple[Any, ...], socket.socket],
        lock: threading.Lock,
    ) -> None:
        """Replies go back to the client; a client silent for `_UDP_IDLE` seconds loses its socket."""
        while not self._closed:
            try:
                data = upstream.recv(65535)
                listener.sendto(data, client)
            except ConnectionRefusedError:  # nothing listens in the container (yet): ICMP, not an end
                continue
            except TimeoutError:
                break
            except OSError:
                return
        with lock:
            if upstreams.get(client) is upstream:
                del upstreams[client]
        upstream.close()

    def close(self) -> None:
        self._closed = True
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for fd in (self._netns, self._hostns):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            src.shutdown(socket.SHUT_RD)
