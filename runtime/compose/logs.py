"""Logs of several containers, each line prefixed with its container's short name (`web_1  | line`),
as docker-compose 1.29 prints them; following them all until they stop or `stop()` says so."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from runtime.compose import names
from runtime.containers import Container

__all__ = ["follow", "prefixes", "short_name"]


def short_name(container: Container) -> str:
    """SERVICE_N for a container Compose named PROJECT_SERVICE_N, else its name (1.29's rule)."""
    labels = container.spec.labels
    project, service = labels.get(names.PROJECT, ""), labels.get(names.SERVICE, "")
    if project and service and container.name.startswith(f"{project}_{service}"):
        return f"{service}_{labels.get(names.NUMBER, '1')}"
    return container.name


def prefixes(containers: list[Container], services: list[str]) -> dict[str, str]:
    """`SERVICE_N | `, padded to the project's longest service name plus three (docker-compose 1.29)."""
    width = max((len(s) for s in services), default=0) + 3
    return {c.id: f"{short_name(c).ljust(width)} | " for c in containers}


class _Reader:
    def __init__(self, container: Container, prefix: str) -> None:
        self.container = container
        self.prefix = prefix
        self.file: IO[str] | None = None
        self.pending = ""

    def pump(self, out: IO[str]) -> bool:
        """Print the whole lines written since the last call; whether any were."""
        if self.file is None:
            try:
                self.file = open(self.container.log_path)
            except FileNotFoundError:
                return False
        records = self.file.readlines()
        for record in records:
            try:
                text = str(json.loads(record).get("log", ""))
            except ValueError:
                continue
            text = self.pending + text
            *lines, self.pending = text.split("\n")
            for line in lines:
                out.write(f"{self.prefix}{line}\n")
        if records:
            out.flush()
        return bool(records)

    def finish(self, out: IO[str]) -> None:
        self.pump(out)
        if self.pending:
            out.write(f"{self.prefix}{self.pending}\n")
            self.pending = ""
        if self.file is not None:
            self.file.close()


def follow(
    containers: list[Container],
    services: list[str],
    *,
    keep_going: bool,
    stop: threading.Event | None = None,
    on_exit: Callable[[Container], None] | None = None,
    prefix: bool = True,
    out: IO[str] | None = None,
) -> None:
    """Every log so far; with `keep_going`, new lines as they come until every container has
    stopped (`on_exit` called for each as it does) or `stop` is set."""
    out = out or sys.stdout
    labels = prefixes(containers, services) if prefix else {c.id: "" for c in containers}
    readers = [_Reader(c, labels[c.id]) for c in containers]
    live = {r.container.id for r in readers}
    while True:
        busy = False
        for reader in readers:
            running = reader.container.state().status in ("running", "restarting")
            busy = reader.pump(out) or busy
            if not running and reader.container.id in live and keep_going:
                reader.pump(out)
                live.discard(reader.container.id)
                if on_exit is not None:
                    on_exit(reader.container)
        if not keep_going or not live or (stop is not None and stop.is_set()):
            break
        if not busy:
            time.sleep(0.05)
    for reader in readers:
        reader.finish(out)
