"""Auth's own typed options (the `auth` section of the config file), and what it needs to know of
the server around it. `registry/config.py` composes these into the whole config; nothing here
knows the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from typedconfig import Duration, duration


@dataclass(frozen=True)
class HtpasswdConfig:
    realm: str = "Registry Realm"
    path: str = ""


@dataclass(frozen=True)
class TokenConfig:
    realm: str = ""
    service: str = ""
    issuer: str = ""
    rootcertbundle: str = ""
    jwks: str = ""
    autoredirect: bool = False
    signingalgorithms: list[str] = field(default_factory=list)
    # Dockyard: clock skew allowed when checking exp/nbf/iat.
    leeway: Duration = duration("60s")


@dataclass(frozen=True)
class TokenServerConfig:
    """Dockyard's built-in token server (`auth.tokenserver`); its presence selects token mode."""

    path: str = "/auth/token"
    jwkspath: str = "/auth/jwks.json"
    expiration: Duration = duration("5m")
    refreshexpiration: Duration = duration("720h")
    # PEM private key; empty: generated on first start under the storage root (mode 0600).
    key: str = ""
    algorithm: Literal["ES256", "RS256"] = "ES256"


@dataclass(frozen=True)
class AccessRuleConfig:
    repositories: list[str] = field(default_factory=list)
    who: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccessConfig:
    """Who may do what (`auth.access`), inline or in a YAML file at `path` (re-read when it changes)."""

    path: str = ""
    groups: dict[str, list[str]] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    rules: list[AccessRuleConfig] = field(default_factory=list)


@dataclass(frozen=True)
class LoginLimitConfig:
    """Failed logins: `failures` within `window` per client address and per (user, address) are
    refused with 429; failures for one user from anywhere only slow that user's logins down, by
    at most `maxdelay`, so nobody can lock a user out."""

    failures: int = 10
    window: Duration = duration("5m")
    maxdelay: Duration = duration("2s")


@dataclass(frozen=True)
class RobotsConfig:
    """Robot accounts (`dockyard robot add`): the JSON file holding their hashed tokens and scopes."""

    path: str = ""


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: HtpasswdConfig | None = None
    token: TokenConfig | None = None
    tokenserver: TokenServerConfig | None = None
    access: AccessConfig | None = None
    loginlimit: LoginLimitConfig = field(default_factory=LoginLimitConfig)
    robots: RobotsConfig | None = None

    @property
    def mode(self) -> Literal["none", "htpasswd", "token"]:
        if self.token is not None or self.tokenserver is not None:
            return "token"
        if self.htpasswd is not None:
            return "htpasswd"
        return "none"


@dataclass(frozen=True)
class ServerContext:
    """What auth needs from the rest of the server's config."""

    # Trust X-Forwarded-For/-Proto/-Host (http.trustforwardedheaders).
    trust_forwarded: bool = False
    # The public base URL (http.host), if configured.
    public_host: str = ""
    # Where a generated token signing key is kept; None: storage keeps no local files.
    key_directory: Path | None = None
    # Storage that forgets everything at exit: a key made afresh per process is good enough.
    volatile: bool = False
