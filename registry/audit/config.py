"""The `audit` config section (typed, owned here; composed by registry/config.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from typedconfig import ConfigError

log = logging.getLogger("dockyard.config")

STDERR = "-"


@dataclass(frozen=True)
class AuditConfig:
    enabled: bool = False
    # Empty or `-`: standard error. Else a file the lines are appended to (created 0640 if missing;
    # its directory must exist). Every worker process appends to it itself.
    path: str = ""

    def __post_init__(self) -> None:
        if "\0" in self.path:
            raise ConfigError("audit.path: not a file path")
        if self.path and not self.enabled:
            log.warning("audit.path is set but audit.enabled is false: nothing is audited")

    @property
    def to_stderr(self) -> bool:
        return self.path in ("", STDERR)
