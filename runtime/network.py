"""Container networking without addresses of its own: `none` and `private` get a fresh network
namespace with only loopback (brought up here), `host` shares the host's. Published ports are a
userspace forwarder, the way rootless port drivers work: it accepts on the host and dials the
container's own 127.0.0.1 from a socket created inside the container's network namespace."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable

from runtime import syscalls
from runtime.namespaces import Namespace
from runtime.spec import PortMapping

__all__ = ["PortForwarder", "loopback_up", "parse_publish"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Bring `lo` up in the current network namespace (netdevice(7), SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


def parse_publish(value: str) -> PortMapping:
    """Docker's -p forms: CTR is not enough here (no random host ports), so HOST:CTR or IP:HOST:CTR,
    each port optionally followed by /tcp."""
    value = value.removesuffix("/tcp")
    if value.endswith("/udp"):
        raise ValueError(f"only tcp ports can be published: {value}")
    if value.startswith("["):  # [::1]:8080:80
        host_ip, _, rest = value[1:].partition("]:")
        host_port, _, ctr_port = rest.partition(":")
    else:
        parts = value.split(":")
        if len(parts) == 2:
            host_ip, (host_port, ctr_port) = "127.0.0.1", parts
        elif len(parts) == 3:
            host_ip, host_port, ctr_port = parts
            host_ip = host_ip or "127.0.0.1"
        else:
            raise ValueError(f"invalid port mapping {value!r}: want [IP:]HOSTPORT:CONTAINERPORT")
    try:
        mapping = PortMapping(host_ip, int(host_port), int(ctr_port))
    except ValueError:
        raise ValueError(f"invalid port mapping {value!r}: ports must be numbers") from None
    for port in (mapping.host_port, mapping.container_port):
        if not 0 < port < 65536:
            raise ValueError(f"invalid port {port}")
    return mapping


class PortForwarder:
    """Listens on each mapping's host address and pipes every connection to the container's
    loopback. Threads only: the process that owns it may already sit in a new PID namespace."""

    def __init__(self, mappings: tuple[PortMapping, ...]) -> None:
        """Bind every host address now, so that a port in use fails before the container starts."""
        self._mappings = mappings
        self._netns = -1
        self._hostns = -1
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._closed = False
        try:
            for m in mappings:
                family = socket.AF_INET6 if ":" in m.host_ip else socket.AF_INET
                listener = socket.socket(family, socket.SOCK_STREAM)
                self._listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((m.host_ip, m.host_port))
                listener.listen(128)
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, f"cannot publish {m.host_ip}:{m.host_port}: {exc.strerror}") from None

    def start(self, netns: int) -> None:
        """Serve connections into the network namespace open as `netns` (the fd is duplicated)."""
        self._netns = os.dup(netns)
        self._hostns = os.open(Namespace.NET.path("thread-self"), os.O_RDONLY | os.O_CLOEXEC)
        for listener, m in zip(self._listeners, self._mappings, strict=True):
            self._spawn(self._accept_loop, listener, m.container_port)

    @staticmethod
    def _spawn(target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _dial(self, port: int) -> socket.socket:
        # setns(2) with CLONE_NEWNET changes only the calling thread; a socket keeps the namespace
        # it was created in, so it can be used after switching back.
        with self._lock:
            syscalls.setns(self._netns, Namespace.NET.flag)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                syscalls.setns(self._hostns, Namespace.NET.flag)
        try:
            sock.connect(("127.0.0.1", port))
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
