"""Restart policies (--restart), carried out by the container's supervisor, and the revival of
containers whose supervisor is gone (killed, or the machine restarted): the next `dockyard`
container command restarts those whose policy says they should run, as dockerd does when it
starts. Nothing runs between reboots, so a container comes back only when `dockyard` is next run."""

from __future__ import annotations

import contextlib
import fcntl
import json
import time

from runtime.containers import Container, ContainerStore, State, now
from runtime.spec import RestartPolicy

__all__ = ["Backoff", "revive", "should_restart", "wait_before_restart"]

_FIRST_DELAY = 0.1  # moby restartmanager: 100ms, doubled after each quick exit, at most a minute
_MAX_DELAY = 60.0
_STABLE = 10.0  # a container that ran this long starts over at the first delay


class Backoff:
    def __init__(self) -> None:
        self.delay = 0.0

    def next(self, ran_for: float) -> float:
        self.delay = _FIRST_DELAY if ran_for >= _STABLE or not self.delay else min(self.delay * 2, _MAX_DELAY)
        return self.delay


def should_restart(policy: RestartPolicy, state: State, code: int) -> bool:
    if state.manually_stopped:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        return code != 0 and (policy.max_retries == 0 or state.restart_count < policy.max_retries)
    return False


def wait_before_restart(container: Container, delay: float) -> bool:
    """Sleep `delay`, unless the container is stopped or removed meanwhile (then False)."""
    deadline = time.monotonic() + delay
    while True:
        if not container.dir.is_dir() or container.state().manually_stopped:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _orphaned(container: Container) -> State | None:
    """The state of a container recorded as running or restarting whose supervisor is gone."""
    try:
        recorded = json.loads((container.dir / "state.json").read_text()).get("status")
    except (OSError, ValueError):
        return None
    state = container.state()
    if recorded in ("running", "restarting") and state.status == "exited":
        return state
    return None


def revive(store: ContainerStore) -> None:
    """Restart every container whose supervisor died while its policy wanted it running."""
    from runtime import container as lifecycle

    if not store.base.is_dir():
        return
    with open(store.base / "revive.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another command is already at it
        for c in store.list():
            if c.spec.restart.name == "no":
                continue
            state = _orphaned(c)
            if state is None:
                continue
            c.update_state(status="exited", exit_code=state.exit_code, finished=state.finished or now())
            if not should_restart(c.spec.restart, c.state(), state.exit_code):
                continue
            c.update_state(restart_count=state.restart_count + 1)
            with contextlib.suppress(Exception):
                _outcome, sock = lifecycle.start(store, c)
                sock.close()
