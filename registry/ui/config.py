"""The `ui` config section: the web UI served by the registry process itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UiConfig:
    enabled: bool = True
    # Where the UI lives; `/` by default. Never /v2/ or a path another route already owns.
    path: str = "/"
    title: str = "Dockyard"
    # How long a login lasts without a new login (a Go-style duration).
    sessionlifetime: str = "12h"
