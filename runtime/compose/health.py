"""Healthchecks for `depends_on: condition: service_healthy`. The runtime itself runs none, so
Compose polls: the service's `healthcheck.test` is run in the container (as `dockyard exec` runs a
command) every `interval` until it exits 0, up to `retries` failures after `start_period`."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import time

from runtime.containers import Container

__all__ = ["HealthError", "exec_status", "parse_duration", "wait_healthy"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class HealthError(Exception):
    pass


def parse_duration(value: object, default: float) -> float:
    if value is None:
        return default
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(str(value)))


def test_command(test: object) -> list[str] | None:
    """The healthcheck's argv; None for NONE (no check)."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    assert isinstance(test, list) and test
    kind, rest = str(test[0]), [str(t) for t in test[1:]]
    if kind == "NONE":
        return None
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    if kind == "CMD":
        return rest
    return [str(t) for t in test]


def exec_status(container: Container, argv: list[str], timeout: float) -> int:
    """`dockyard exec CONTAINER ARGV` with its output discarded: the exit code, 124 on timeout."""
    from runtime.commands.exec import run_exec

    args = argparse.Namespace(
        container=container.id, cmd=argv, user=None, env=[], workdir=None, tty=False, interactive=False
    )
    pid = os.fork()
    if pid == 0:  # the child: run_exec installs its own signal handlers and waits
        code = 125
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            code = run_exec(args)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            return 124
        time.sleep(0.05)


def wait_healthy(container: Container, healthcheck: dict[str, object]) -> None:
    """Until the check passes; HealthError once it has failed `retries` times, or the container stopped."""
    argv = test_command(healthcheck.get("test"))
    if argv is None or healthcheck.get("disable"):
        raise HealthError(
            f"container for service {container.spec.labels.get('com.docker.compose.service')} "
            "has no healthcheck configured"
        )
    interval = parse_duration(healthcheck.get("interval"), 30.0)
    timeout = parse_duration(healthcheck.get("timeout"), 30.0)
    retries = int(str(healthcheck.get("retries") or 3))
    grace_until = time.monotonic() + parse_duration(healthcheck.get("start_period"), 0.0)
    failures = 0
    while True:
        if container.state().status != "running":
            raise HealthError(f"container {container.name} exited ({container.state().exit_code})")
        if exec_status(container, argv, timeout) == 0:
            return
        if time.monotonic() >= grace_until:
            failures += 1
            if failures >= retries:
                raise HealthError(f"container {container.name} is unhealthy")
        time.sleep(interval)
