"""Container lifecycle: start (through a detached supervisor), stop, kill, remove."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time

from runtime.attach import Outcome, wait_started
from runtime.cgroups.factory import open_manager
from runtime.containers import Container, ContainerError, ContainerStore
from runtime.netmembership import may_be_on_a_network
from runtime.supervisor import Supervisor, daemonize

__all__ = ["attach", "kill", "parse_signal", "remove", "remove_files", "start", "stop", "wait_exited"]


def start(store: ContainerStore, container: Container) -> tuple[Outcome, socket.socket]:
    """Start `container` under a new supervisor. The returned socket is already attached, so no
    output is lost; close it to detach."""
    state = container.state()
    if state.status in ("running", "restarting"):
        raise ContainerError(f"container {container.name} is already {state.status}")
    container.update_state(manually_stopped=False)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def run() -> None:
        Supervisor(container, theirs, lambda c: remove_files(store, c, volumes=True)).run()

    daemonize(run, keep=(theirs.fileno(),), log=container.dir / "supervisor.log")
    theirs.close()
    return wait_started(ours), ours


def attach(container: Container) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with container.attach_address() as address:
            sock.connect(address)
    except OSError:
        sock.close()
        raise ContainerError("You cannot attach to a stopped container, start it first") from None
    return sock


def kill(container: Container, sig: int = signal.SIGKILL) -> None:
    state = container.state()
    if state.status == "restarting":
        container.update_state(manually_stopped=True)
        return
    if state.status != "running":
        raise ContainerError(f"Container {container.id} is not running")
    if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, parse_signal(container.spec.stop_signal)):
        # Stopped by hand: the restart policy no longer applies (as dockerd's HasBeenManuallyStopped).
        container.update_state(manually_stopped=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, sig)


def parse_signal(name: str) -> int:
    """SIGTERM, TERM or 15, as Docker accepts for StopSignal and `kill -s`."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals["SIG" + text.removeprefix("SIG")])
    except KeyError:
        raise ContainerError(f"invalid signal: {name}") from None


def wait_exited(container: Container, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.state().status != "running":
            return True
        time.sleep(0.02)
    return container.state().status != "running"


def stop(container: Container, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL once `timeout` has passed (Docker's stop). A PID 1 without a SIGTERM
    handler ignores it (pid_namespaces(7)), so such containers end with the SIGKILL: 137."""
    status = container.state().status
    if status == "restarting":
        container.update_state(manually_stopped=True)
        _wait_supervisor(container, timeout)
        return
    if status != "running":
        return
    container.update_state(manually_stopped=True)
    with contextlib.suppress(ContainerError):
        kill(container, parse_signal(container.spec.stop_signal))
    if wait_exited(container, timeout):
        return
    with contextlib.suppress(ContainerError):
        kill(container, signal.SIGKILL)
    if not wait_exited(container, 10):
        raise ContainerError(f"container {container.name} did not stop")


def remove_files(store: ContainerStore, container: Container, volumes: bool) -> None:
    """The container's directory and, with `volumes` (`rm -v`, `run --rm`), its anonymous volumes."""
    if container.spec.network == "private" and may_be_on_a_network(store.root, container.id):
        from runtime.networks.api import release_container

        release_container(store.root, container.id)
    store.remove_files(container)
    if volumes:
        from runtime.volumes import VolumeStore

        anonymous = VolumeStore(store.root)
        for mount in container.spec.mounts:
            if mount.kind == "volume" and anonymous.is_anonymous(mount.volume):
                shutil.rmtree(anonymous.base / mount.volume, ignore_errors=True)


def _wait_supervisor(container: Container, timeout: float) -> None:
    """Until a restarting container's supervisor has seen the stop and given up."""
    deadline = time.monotonic() + timeout
    while container.state().status == "restarting" and time.monotonic() < deadline:
        time.sleep(0.02)


def remove(store: ContainerStore, container: Container, force: bool = False, volumes: bool = False) -> None:
    state = container.state()
    if state.status == "restarting":
        if not force:
            raise ContainerError(
                f"You cannot remove a restarting container {container.id}. Stop the container before "
                "attempting removal or force remove"
            )
        container.update_state(manually_stopped=True)
        _wait_supervisor(container, 10)
        state = container.state()
    if state.status == "running":
        if not force:
            raise ContainerError(
                f"You cannot remove a running container {container.id}. Stop the container before "
                "attempting removal or force remove"
            )
        kill(container)
        wait_exited(container, 10)
    if state.cgroup:
        # Normally gone with the supervisor; left behind only if it died.
        with contextlib.suppress(OSError):
            manager = open_manager(state.cgroup)
            manager.kill_all()
            manager.destroy()
    remove_files(store, container, volumes)
