"""The per-container supervisor (Docker's containerd-shim, Podman's conmon): a process detached
from the CLI that starts the container, holds its stdio, writes the log, serves attach clients
and published ports, and records the exit status, so the container outlives the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from runtime import cgroups
from runtime.attach import Kind, read_frame, send_frame
from runtime.cgroups.factory import new_manager
from runtime.containers import Container, now, process_start_time
from runtime.netmembership import may_be_on_a_network
from runtime.network import PortForwarder
from runtime.ports import PublishedPort
from runtime.process import ChildError, Launched, RootfsPaths, exit_code, set_winsize, spawn_container

__all__ = ["Supervisor", "daemonize"]

_SEND_TIMEOUT = 30  # seconds


def daemonize(run: Callable[[], object], keep: tuple[int, ...], log: Path) -> int:
    """Double-fork so that `run` executes in a process of its own session, re-parented to init;
    returns the pid of the intermediate child (already reaped) to the caller."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return pid
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        errors = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(errors, 1)
        os.dup2(errors, 2)
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2 and int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        run()
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


class Supervisor:
    def __init__(
        self, container: Container, first_client: socket.socket | None, remove: Callable[[Container], None]
    ) -> None:
        self.container = container
        self.spec = container.spec
        self.clients: list[socket.socket] = []
        self.clients_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.stdin_fd: int | None = None
        self.pty: int | None = None
        self.remove = remove
        self.pending_size: bytes | None = None
        if first_client is not None:
            self._add_client(first_client)

    def _add_client(self, client: socket.socket) -> None:
        # A client that stops reading must not stall the container's output for ever: after this
        # long a send fails and the client is dropped (socket(7), SO_SNDTIMEO).
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", _SEND_TIMEOUT, 0))
        with self.clients_lock:
            self.clients.append(client)
        threading.Thread(target=self._client_input, args=(client,), daemon=True).start()

    def _broadcast(self, kind: Kind, payload: bytes) -> None:
        with self.clients_lock:
            for client in list(self.clients):
                try:
                    send_frame(client, kind, payload)
                except OSError:
                    self.clients.remove(client)
                    with contextlib.suppress(OSError):
                        client.close()

    def _client_input(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            while (frame := read_frame(client)) is not None:
                if frame.kind == Kind.RESIZE:
                    if self.pty is not None:
                        set_winsize(self.pty, frame.payload)
                    else:
                        self.pending_size = frame.payload
                elif frame.kind == Kind.STDIN and self.spec.process.stdin:
                    target = self.pty if self.pty is not None else self.stdin_fd
                    if target is not None:
                        _write_all(target, frame.payload)
                elif frame.kind == Kind.STDIN_EOF and self.stdin_fd is not None and self.pty is None:
                    os.close(self.stdin_fd)
                    self.stdin_fd = None
        with self.clients_lock:
            if client in self.clients:
                self.clients.remove(client)

    def _log(self, stream: str, data: bytes) -> None:
        line = json.dumps({"log": data.decode(errors="replace"), "stream": stream, "time": now()}) + "\n"
        with self.log_lock, open(self.container.log_path, "a") as f:
            f.write(line)

    def _pump(self, fd: int, stream: str) -> None:
        kind = Kind.STDOUT if stream == "stdout" else Kind.STDERR
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the pty's last slave closed
                break
            if not data:
                break
            self._log(stream, data)
            self._broadcast(kind, data)
        os.close(fd)

    def _serve_attach(self, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                self._add_client(client)

    def _write_files(self) -> dict[str, str]:
        from runtime import etcfiles

        d = self.container.dir
        (d / "hostname").write_text(self.spec.hostname + "\n")
        try:
            host_hosts = Path("/etc/hosts").read_text()
        except OSError:
            host_hosts = ""
        (d / "hosts").write_text(etcfiles.hosts_file(self.spec, host_hosts))
        (d / "resolv.conf").write_text(etcfiles.resolv_conf(self.spec, etcfiles.host_resolv_conf()))
        return {
            "/etc/hostname": str(d / "hostname"),
            "/etc/hosts": str(d / "hosts"),
            "/etc/resolv.conf": str(d / "resolv.conf"),
        }

    def run(self) -> int:
        """Run the container, again and again as long as its restart policy says so."""
        from runtime import restart

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        backoff = restart.Backoff()
        while True:
            began = time.monotonic()
            code, started = self._run_once()
            state = self.container.state()
            if not started or not restart.should_restart(self.spec.restart, state, code):
                break
            self.container.update_state(status="restarting", restart_count=state.restart_count + 1)
            if not restart.wait_before_restart(self.container, backoff.next(time.monotonic() - began)):
                if self.container.dir.is_dir():
                    self.container.update_state(status="exited")
                break
        if self.spec.auto_remove:
            self.remove(self.container)
        return code

    def _run_once(self) -> tuple[int, bool]:
        """Start the container's process and wait for it: (its exit code, whether it started)."""
        container, spec = self.container, self.spec
        manager = new_manager(f"dockyard/{spec.id}")
        stdio: tuple[int, int, int] | None = None
        forwarder: PortForwarder | None = None
        try:
            manager.create()
            manager.set(spec.resources)
            devices_confined = manager.confine_devices(allow_all=spec.security.privileged)
            container.update_state(
                cgroup=manager.describe(),
                supervisor=os.getpid(),
                supervisor_start=process_start_time(os.getpid()),
                error="",
            )
            paths = RootfsPaths(
                container.dir / "rootfs",
                container.dir / "upper",
                container.dir / "work",
                container.dir / "copy",
                self._write_files(),
                {name: str(path) for name, path in manager.directories().items()},
            )
            if spec.ports:
                forwarder = PortForwarder(spec.ports)
            stdio, parent_ends = self._stdio()
            address: list[str] = []

            def plug() -> None:
                from runtime.networks.api import plug_container
                from runtime.networks.bridge import own_netns_path

                ip = plug_container(root, spec.id, own_netns_path())
                address.extend([ip] if ip else [])

            root = container.dir.parent.parent
            networked = spec.network == "private" and may_be_on_a_network(root, spec.id)
            launched = spawn_container(
                spec, paths, stdio, manager.add, devices_confined, plug if networked else None, container.seccomp_cache
            )
        except Exception as exc:
            if forwarder is not None:
                forwarder.close()
            self._unplug()
            if isinstance(exc, ChildError):
                return self._failed(manager, exc.code, str(exc)), False
            print(traceback.format_exc(), file=sys.stderr)
            return self._failed(manager, 125, str(exc)), False
        for fd in stdio or ():
            if fd > 2:
                os.close(fd)
        container.update_state(
            status="running",
            pid=launched.pid,
            pid_start=process_start_time(launched.pid),
            started=now(),
            finished="",
            exit_code=0,
            oom_killed=False,
            ports=_published(forwarder),
        )
        if forwarder is not None and launched.netns is not None:
            forwarder.start(launched.netns, *address[:1])
        server = self._listen()
        # STARTED goes out before any output, so that clients see output frames only after it.
        self._broadcast(Kind.STARTED, spec.id.encode())
        pumps = self._start_pumps(launched, parent_ends)
        _, status = os.waitpid(launched.pid, 0)
        code = exit_code(status)
        deadline = time.monotonic() + 2
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        oom = manager.stats().oom_kills > 0
        self._cleanup_cgroup(manager)
        if forwarder is not None:
            forwarder.close()
        if launched.netns is not None:
            os.close(launched.netns)
        self._unplug()
        # A restart opens new ones: this run's terminal and stdin pipe go with its process.
        leftovers = [fd for fd in (launched.pty, self.stdin_fd) if fd is not None]
        self.pty = self.stdin_fd = None
        for fd in leftovers:
            with contextlib.suppress(OSError):
                os.close(fd)
        server.close()
        with contextlib.suppress(OSError):
            container.attach_socket.unlink()
        container.update_state(status="exited", exit_code=code, oom_killed=oom, finished=now(), ports=[])
        self._broadcast(Kind.EXIT, str(code).encode())
        return code, True

    def _unplug(self) -> None:
        root = self.container.dir.parent.parent
        if self.spec.network == "private" and may_be_on_a_network(root, self.spec.id):
            from runtime.networks.api import unplug_container

            try:
                unplug_container(root, self.spec.id)
            except Exception:
                print(traceback.format_exc(), file=sys.stderr)

    def _stdio(self) -> tuple[tuple[int, int, int] | None, tuple[int, int]]:
        if self.spec.process.terminal:
            return None, (-1, -1)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if self.spec.process.stdin:
            in_r, in_w = os.pipe()
            self.stdin_fd = in_w
        else:
            in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return (in_r, out_w, err_w), (out_r, err_r)

    def _start_pumps(self, launched: Launched, ends: tuple[int, int]) -> list[threading.Thread]:
        if launched.pty is not None:
            self.pty = launched.pty
            if self.pending_size is not None:
                set_winsize(self.pty, self.pending_size)
            # The pty has one stream: Docker also logs a terminal's output as stdout.
            targets = [(os.dup(launched.pty), "stdout")]
        else:
            targets = [(ends[0], "stdout"), (ends[1], "stderr")]
        pumps = [threading.Thread(target=self._pump, args=t, daemon=True) for t in targets]
        for pump in pumps:
            pump.start()
        return pumps

    def _listen(self) -> socket.socket:
        path = self.container.attach_socket
        with contextlib.suppress(OSError):
            path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.container.attach_address() as address:
            server.bind(address)
        server.listen(16)
        threading.Thread(target=self._serve_attach, args=(server,), daemon=True).start()
        return server

    def _cleanup_cgroup(self, manager: cgroups.CgroupManager) -> None:
        try:
            manager.kill_all()
            manager.destroy()
        except OSError as exc:
            print(f"cgroup cleanup: {exc}", file=sys.stderr)

    def _failed(self, manager: cgroups.CgroupManager, code: int, message: str) -> int:
        self._cleanup_cgroup(manager)
        # Never started (a port in use, a missing executable): Docker leaves such a container Created.
        self.container.update_state(status="created", exit_code=code, error=message, finished=now())
        self._broadcast(Kind.ERROR, f"{code} {message}".encode())
        return code


def _published(forwarder: PortForwarder | None) -> list[dict[str, object]]:
    if forwarder is None:
        return []
    return [PublishedPort(m.container_port, m.protocol, m.host_ip, m.host_port).as_dict() for m in forwarder.published]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
