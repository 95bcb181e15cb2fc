"""Restart policies (--restart): when a container that exited starts again, and after how long.
The supervisor carries them out; runtime/revive.py applies them to containers whose supervisor is gone."""

from __future__ import annotations

import time

from runtime.containers import Container, State
from runtime.spec import RestartPolicy

__all__ = ["Backoff", "should_restart", "wait_before_restart"]

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
