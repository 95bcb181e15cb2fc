"""The `ui` config section: the web UI served by the registry process itself.

Checked by `registry.ui.checks` (when the app is built, and by `serve` before its workers start).
"""

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

    @property
    def base(self) -> str:
        """The path prefix of every UI URL: "" at the root, "/ui" for `path: /ui/`."""
        return self.path.rstrip("/")
