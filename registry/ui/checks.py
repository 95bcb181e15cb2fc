"""What a `ui` section may say, checked against the whole config: light enough for `serve`'s parent
process, which checks it before any worker starts."""

from __future__ import annotations

from registry.config import Config, ConfigError, parse_duration

# Paths the registry itself answers; the UI may not sit on or under them.
RESERVED = ("/v2", "/healthz", "/readyz", "/metrics", "/auth", "/debug")


def check_ui(config: Config) -> float:
    """Refuse a `ui` section that cannot work; returns the session lifetime in seconds."""
    ui = config.ui
    path = ui.path
    if not path.startswith("/") or "//" in path or any(c in path for c in "?#{}\\ %"):
        raise ConfigError(f"ui.path: {path!r} must be an absolute URL path such as / or /ui")
    owned = [*RESERVED, config.metrics.path.rstrip("/")]
    for taken in filter(None, owned):
        if ui.base and (ui.base == taken or ui.base.startswith(f"{taken}/")):
            raise ConfigError(f"ui.path: {path!r} is taken by the registry's own {taken}")
    try:
        lifetime = parse_duration(ui.sessionlifetime)
    except ValueError as exc:
        raise ConfigError(f"ui.sessionlifetime: {exc}") from None
    if lifetime <= 0:
        raise ConfigError("ui.sessionlifetime: must be longer than 0s")
    return lifetime
