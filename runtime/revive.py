"""Containers whose supervisor is gone (killed, or the machine restarted) while their restart
policy wanted them running: the next `dockyard` container command starts them again, as dockerd
does when it starts. Nothing runs between reboots, so they come back only when `dockyard` is next run."""

from __future__ import annotations

import contextlib
import fcntl
import json

from runtime import container as lifecycle
from runtime.containers import Container, ContainerStore, State, now
from runtime.restart import should_restart

__all__ = ["revive"]


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
