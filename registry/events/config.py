"""The `notifications` section: distribution's keys, plus Dockyard's `format` and `secret`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from typedconfig import ConfigError, Duration, duration

ACTIONS = ("push", "pull", "delete", "mount")
# Events per request unless `maxevents` says otherwise. distribution's envelope is a list, which its
# receivers read whole; a CloudEvents receiver need not take batch mode, so it gets one at a time.
DEFAULT_MAX_EVENTS = {"distribution": 100, "cloudevents": 1}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True)
class IgnoreConfig:
    # Events whose target has one of these media types are not sent (`application/octet-stream`: blobs).
    mediatypes: list[str] = field(default_factory=list)
    # Events with one of these actions (push, pull, delete, mount) are not sent.
    actions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for action in self.actions:
            if action not in ACTIONS:
                choices = ", ".join(ACTIONS)
                raise ConfigError(f"notifications.endpoints: ignore.actions: {action!r} is not one of {choices}")


@dataclass(frozen=True)
class EndpointConfig:
    name: str = ""
    url: str = ""
    # Sent with every request: `Authorization: [Bearer x]` (distribution's form: a list per name).
    headers: dict[str, Any] = field(default_factory=dict)
    timeout: Duration = duration("1s")
    # Failures in a row before delivery waits `backoff` (doubling while it keeps failing).
    threshold: int = 10
    backoff: Duration = duration("1s")
    disabled: bool = False
    # distribution's older spelling of ignore.mediatypes; both apply.
    ignoredmediatypes: list[str] = field(default_factory=list)
    ignore: IgnoreConfig = field(default_factory=IgnoreConfig)
    # Dockyard: `distribution` (its envelope, unchanged) or `cloudevents` (CloudEvents 1.0, structured JSON).
    format: Literal["distribution", "cloudevents"] = "distribution"
    # Dockyard: when set, every request carries `X-Dockyard-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    secret: str = ""
    # Dockyard: at most this many events per request; 0: the format's default (DEFAULT_MAX_EVENTS).
    # 1 sends one event per request, as distribution 2.8 does; cloudevents above 1 uses batch mode.
    maxevents: int = 0

    def __post_init__(self) -> None:
        where = f"notifications.endpoints[{self.name or '?'}]"
        if not self.name:
            raise ConfigError("notifications.endpoints: every endpoint needs a name")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}.url: {self.url!r} is not an http:// or https:// URL")
        if self.threshold < 1:
            raise ConfigError(f"{where}.threshold: must be at least 1")
        if self.timeout <= 0:
            raise ConfigError(f"{where}.timeout: must be more than 0")
        if self.maxevents < 0:
            raise ConfigError(f"{where}.maxevents: must be 0 (the default) or more")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(str(name)):
                raise ConfigError(f"{where}.headers.{name}: not a header name")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, (dict, list)) or not _HEADER_VALUE.fullmatch(str(item)):
                    raise ConfigError(f"{where}.headers.{name}: expected a header value or a list of them")

    @property
    def max_events(self) -> int:
        return self.maxevents or DEFAULT_MAX_EVENTS[self.format]

    @property
    def header_pairs(self) -> list[tuple[str, str]]:
        return [
            (str(name), str(item))
            for name, value in self.headers.items()
            for item in (value if isinstance(value, list) else [value])
        ]

    def wants(self, action: str, media_type: str) -> bool:
        """Whether an event with this action and target media type goes to this endpoint."""
        if self.disabled or action in self.ignore.actions:
            return False
        return not media_type or media_type not in (*self.ignoredmediatypes, *self.ignore.mediatypes)


@dataclass(frozen=True)
class EventsConfig:
    # Manifest events list the manifest's references (its config, layers, or child manifests).
    includereferences: bool = False


@dataclass(frozen=True)
class NotificationsConfig:
    endpoints: list[EndpointConfig] = field(default_factory=list)
    events: EventsConfig = field(default_factory=EventsConfig)

    def __post_init__(self) -> None:
        names = [endpoint.name for endpoint in self.endpoints]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"notifications.endpoints: two endpoints are named {name!r}")

    @property
    def active(self) -> list[EndpointConfig]:
        return [endpoint for endpoint in self.endpoints if not endpoint.disabled]
