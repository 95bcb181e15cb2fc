"""`validate(spec)`: every problem with a container spec, as Docker would word it, before anything
is created."""

from __future__ import annotations

import os
import re

from runtime.spec import ContainerSpec

__all__ = ["MIN_MEMORY", "NAME", "validate"]

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less: the runtime itself needs a few MiB


def validate(spec: ContainerSpec) -> list[str]:
    problems: list[str] = []
    if spec.name and not NAME.match(spec.name):
        problems.append(f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if not HOSTNAME.match(spec.hostname):
        problems.append(f"invalid hostname: {spec.hostname!r}")
    if not spec.process.args:
        problems.append("no command specified")
    if not spec.process.cwd.startswith("/"):
        problems.append(f"the working directory '{spec.process.cwd}' is invalid, it needs to be an absolute path")
    for m in spec.mounts:
        if not m.target.startswith("/") or os.path.normpath(m.target) == "/":
            problems.append(f"invalid mount target {m.target!r}: must be an absolute path other than /")
        if m.kind == "bind" and not os.path.isabs(m.source):
            problems.append(f"invalid mount source {m.source!r}: must be an absolute path")
    targets = [os.path.normpath(m.target) for m in spec.mounts]
    for t in sorted({t for t in targets if targets.count(t) > 1}):
        problems.append(f"Duplicate mount point: {t}")
    r = spec.resources
    if r.memory is not None and r.memory < MIN_MEMORY:
        problems.append("Minimum memory limit allowed is 6MB")
    if r.cpu_quota is not None:
        cpus = r.cpu_quota / r.cpu_period
        available = os.cpu_count() or 1
        if cpus > available:
            problems.append(
                f"range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available"
            )
    if r.pids is not None and r.pids < 0:
        problems.append("invalid pids limit")
    seen: set[tuple[str, int, str]] = set()
    for p in spec.ports:
        key = (p.host_ip, p.host_port, p.protocol)
        if key in seen and p.host_port:
            problems.append(f"port is already allocated: {p.host_ip}:{p.host_port}")
        seen.add(key)
    if spec.ports and spec.network != "private":
        problems.append(f"published ports are discarded when using {spec.network} network mode")
    return problems
