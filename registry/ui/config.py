"""The `ui` config section: the web UI served by the registry process itself.

Checked when the config is loaded, so a bad value stops `dockyard serve` before any worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

# Paths the registry itself answers; the UI may not sit on or under them.
RESERVED = ("/v2", "/healthz", "/readyz", "/metrics", "/auth", "/debug")


def _refuse(message: str) -> NoReturn:
    from registry.config import ConfigError  # at call time: registry.config imports this module

    raise ConfigError(message)


@dataclass(frozen=True)
class UiConfig:
    enabled: bool = True
    # Where the UI lives; `/` by default. Never /v2/ or a path another route already owns.
    path: str = "/"
    title: str = "Dockyard"
    # How long a login lasts without a new login (a Go-style duration).
    sessionlifetime: str = "12h"

    def __post_init__(self) -> None:
        check_path(self.path, RESERVED)
        from registry.config import parse_duration

        try:
            lifetime = parse_duration(self.sessionlifetime)
        except ValueError as exc:
            _refuse(f"ui.sessionlifetime: {exc}")
        else:
            if lifetime <= 0:
                _refuse("ui.sessionlifetime: must be longer than 0s")

    @property
    def base(self) -> str:
        """The path prefix of every UI URL: "" at the root, "/ui" for `path: /ui/`."""
        return self.path.rstrip("/")


def check_path(path: str, reserved: tuple[str, ...]) -> None:
    if not path.startswith("/") or "//" in path or any(c in path for c in "?#{}\\ %"):
        _refuse(f"ui.path: {path!r} must be an absolute URL path such as / or /ui")
    trimmed = path.rstrip("/")
    for taken in reserved:
        if trimmed and (trimmed == taken or trimmed.startswith(f"{taken}/")):
            _refuse(f"ui.path: {path!r} is taken by the registry's own {taken}")
