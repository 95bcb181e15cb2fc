"""The configuration: one typed, frozen object, loaded once at start.

Keys are CNCF distribution's `config.yml` keys wherever the two overlap, so an existing
`registry:2` config file works unchanged; Dockyard's own additions have their own keys (all
documented in `config.example.yaml`). Environment variables override the file:
`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/x` (distribution's form) or `DOCKYARD_...` (ours,
applied last).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml

from auth.config import (
    AccessConfig,
    AccessRuleConfig,
    AuthConfig,
    HtpasswdConfig,
    LoginLimitConfig,
    ServerContext,
    TokenConfig,
    TokenServerConfig,
)
from registry.audit.config import AuditConfig
from registry.events.config import NotificationsConfig
from registry.policies.config import PoliciesConfig, QuotasConfig
from registry.ui.config import UiConfig
from storage_backends.options import FilesystemOptions, MemoryOptions, S3Options
from typedconfig import ConfigError, Duration, build, dataclass_of, duration, parse_duration

log = logging.getLogger("dockyard.config")


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warn", "warning", "error"] = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    fields: dict[str, Any] = field(default_factory=dict)
    accesslog: AccessLogConfig = field(default_factory=lambda: AccessLogConfig())


@dataclass(frozen=True)
class AccessLogConfig:
    disabled: bool = False


@dataclass(frozen=True)
class DeleteConfig:
    enabled: bool = False


@dataclass(frozen=True)
class RedirectConfig:
    disable: bool = False


@dataclass(frozen=True)
class UploadPurgingConfig:
    enabled: bool = True
    age: Duration = duration("168h")
    interval: Duration = duration("24h")
    dryrun: bool = False


@dataclass(frozen=True)
class ReadOnlyConfig:
    enabled: bool = False


@dataclass(frozen=True)
class MaintenanceConfig:
    uploadpurging: UploadPurgingConfig = field(default_factory=UploadPurgingConfig)
    readonly: ReadOnlyConfig = field(default_factory=ReadOnlyConfig)


@dataclass(frozen=True)
class CacheConfig:
    blobdescriptor: str = "inmemory"
    blobdescriptorsize: int = 10000


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# The `storage` sections that choose a backend (the other sections tune the registry).
DRIVERS = ("filesystem", "s3", "inmemory")


@dataclass(frozen=True)
class StorageConfig:
    filesystem: FilesystemOptions | None = None
    s3: S3Options | None = None
    inmemory: MemoryOptions | None = None
    delete: DeleteConfig = field(default_factory=DeleteConfig)
    redirect: RedirectConfig = field(default_factory=RedirectConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    def __post_init__(self) -> None:
        configured = [name for name in DRIVERS if getattr(self, name) is not None]
        if len(configured) > 1:
            # distribution refuses this too: which one would hold the images?
            raise ConfigError(f"storage: configure exactly one driver, not {' and '.join(configured)}")

    @property
    def driver(self) -> str:
        for name in DRIVERS:
            if getattr(self, name) is not None:
                return name
        return "filesystem"

    @property
    def filesystem_root(self) -> str:
        """The filesystem driver's root (its default when the section is absent)."""
        return (self.filesystem or FilesystemOptions()).rootdirectory

    @property
    def driver_options(self) -> FilesystemOptions | S3Options | MemoryOptions:
        options: FilesystemOptions | S3Options | MemoryOptions | None = getattr(self, self.driver)
        return options if options is not None else FilesystemOptions()


@dataclass(frozen=True)
class TLSConfig:
    certificate: str = ""
    key: str = ""
    # CA certificates (PEM files): when set, clients must present a certificate one of them signed.
    clientcas: list[str] = field(default_factory=list)
    # TLS 1.0 and 1.1 are refused: Python's OpenSSL no longer offers them safely.
    minimumtls: Literal["tls1.2", "tls1.3"] = "tls1.2"
    # distribution's (Go's) suite names; TLS 1.3 suites are not configurable (as in Go).
    ciphersuites: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HTTPConfig:
    addr: str = "127.0.0.1:5000"
    net: Literal["tcp", "unix"] = "tcp"
    host: str = ""
    prefix: str = "/"
    secret: str = ""
    relativeurls: bool = False
    draintimeout: Duration = duration("30s")
    tls: TLSConfig = field(default_factory=TLSConfig)
    # Added to every response: `Name: [value, ...]` (distribution's form) or `Name: value`.
    headers: dict[str, Any] = field(default_factory=dict)
    # Dockyard: worker processes (0 = one per core) and whether to trust X-Forwarded-* headers.
    workers: int = 0
    trustforwardedheaders: bool = False


@dataclass(frozen=True)
class GCConfig:
    """Dockyard: garbage collection (`dockyard gc`, and inside the server when `interval` is set)."""

    # Empty or 0: the server never collects by itself (run `dockyard gc` from cron instead).
    interval: Duration = duration("0s")
    # Blobs and links younger than this are never collected: it covers pushes in flight.
    graceperiod: Duration = duration("1h")
    deleteuntagged: bool = False


@dataclass(frozen=True)
class MetricsConfig:
    """Dockyard: Prometheus metrics, served outside /v2/."""

    enabled: bool = True
    path: str = "/metrics"
    # When set, scrapes must send `Authorization: Bearer <token>`.
    token: str = ""


@dataclass(frozen=True)
class UpstreamConfig:
    """One mirrored registry (`proxy.upstreams[]`, or the whole of `proxy` in distribution's form)."""

    remoteurl: str = ""
    username: str = ""
    password: str = ""
    # How long a tag is served from the cache before a HEAD to the upstream revalidates it.
    ttl: Duration = duration("168h")
    # Dockyard: the name prefix mirrored names carry here (`dockerhub/library/nginx`).
    prefix: str = ""
    # Dockyard: this upstream also serves names that carry no prefix and are not local repositories.
    default: bool = False
    # Dockyard: how long a revalidation or fetch may take before cached content is served stale instead.
    timeout: Duration = duration("10s")
    # Dockyard: the cache's size limit (`200GiB`); GC first drops the least recently pulled repositories.
    maxsize: str = ""


@dataclass(frozen=True)
class ProxyConfig:
    """A pull-through cache: `remoteurl` (distribution's form) mirrors one upstream as the whole
    registry; `upstreams` mirrors several, each under its prefix, beside local repositories."""

    remoteurl: str = ""
    username: str = ""
    password: str = ""
    ttl: Duration = duration("168h")
    timeout: Duration = duration("10s")
    maxsize: str = ""
    upstreams: list[UpstreamConfig] = field(default_factory=list)
    # Dockyard: a fill whose clients all went away still completes when at most this many bytes remain.
    backgroundlimit: int = 2 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.remoteurl and self.upstreams:
            raise ConfigError("proxy: set either remoteurl (one upstream, the whole registry) or upstreams, not both")


@dataclass(frozen=True)
class Config:
    version: str = "0.1"
    log: LogConfig = field(default_factory=LogConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    gc: GCConfig = field(default_factory=GCConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # The web UI's section is owned by registry/ui.
    ui: UiConfig = field(default_factory=UiConfig)
    proxy: ProxyConfig | None = None
    # Retention, immutable tags and quotas are owned by registry/policies.
    policies: PoliciesConfig = field(default_factory=PoliciesConfig)
    quotas: QuotasConfig = field(default_factory=QuotasConfig)
    # distribution's webhooks, made durable: owned by registry/events.
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    # The audit log is owned by registry/audit.
    audit: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        if self.proxy is not None and self.storage.maintenance.readonly.enabled:
            # A pull-through cache stores what it fetches: read-only storage would make every miss fail.
            raise ConfigError("proxy: a pull-through cache writes what it fetches; storage.maintenance.readonly is on")
        tls = self.http.tls
        if not tls.certificate and (tls.clientcas or tls.ciphersuites or tls.key):
            # Serving plain HTTP here would give less than configured (no mutual TLS at all).
            raise ConfigError("http.tls: clientcas, ciphersuites and key need http.tls.certificate")
        addr = self.http.addr
        if self.http.net == "unix":
            if not addr.startswith("/"):
                raise ConfigError(f"http.addr: {addr!r}: with http.net unix, the absolute path of the socket")
        else:
            port = addr.rpartition(":")[2]
            if ":" not in addr or not port.isdigit() or int(port) > 65535:
                raise ConfigError(f"http.addr: {addr!r} is not host:port (or :port)")
        prefix = self.http.prefix
        if not prefix.startswith("/") or "//" in prefix or any(c in prefix for c in "?#{}"):
            raise ConfigError(f"http.prefix: {prefix!r} must be a path starting with /")
        for name, value in self.http.headers.items():
            values = value if isinstance(value, list) else [value]
            if not _HEADER_NAME.fullmatch(str(name)):
                raise ConfigError(f"http.headers.{name}: not a header name")
            for item in values:
                if isinstance(item, (dict, list)) or not _HEADER_VALUE.fullmatch(str(item)):
                    raise ConfigError(
                        f"http.headers.{name}: expected a header value (printable text) or a list of them"
                    )

    @property
    def host_port(self) -> tuple[str, int]:
        """Where a `tcp` server listens (`http.addr`); ("", 0) for a unix socket."""
        if self.http.net == "unix":
            return "", 0
        host, _, port = self.http.addr.rpartition(":")
        return (host.strip("[]") or "0.0.0.0"), int(port or 5000)

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """`http.headers` as (name, value) pairs, one per value."""
        pairs = []
        for name, value in self.http.headers.items():
            for item in value if isinstance(value, list) else [value]:
                pairs.append((str(name), str(item)))
        return pairs

    @property
    def auth_context(self) -> ServerContext:
        """What auth needs to know of this server: proxies, public URL, where a key may live."""
        filesystem = self.storage.driver == "filesystem"
        root = Path(self.storage.filesystem_root)
        return ServerContext(
            trust_forwarded=self.http.trustforwardedheaders,
            public_host=self.http.host,
            key_directory=root / "dockyard" / "token" if filesystem else None,
            volatile=self.storage.driver == "inmemory",
        )


# distribution keys that Dockyard accepts but does not act on: a warning at start names each.
UNIMPLEMENTED_KEYS = frozenset(
    {
        "redis",
        "health",
        "validation",
        "compatibility",
        "middleware",
        "reporting",
        "loglevel",
        "catalog",
        "http.debug",
        "http.http2",
        "http.h2c",
        "storage.tag",
        "storage.s3.multipartcombinesmallpart",
        "log.hooks",
        "log.reportcaller",
    }
)

# distribution keys that cannot be skipped without serving less than configured: start errors.
_NO_DRIVER = "Dockyard has no such storage driver (filesystem, s3, inmemory)"
REFUSED_KEYS = {
    "storage.azure": _NO_DRIVER,
    "storage.gcs": _NO_DRIVER,
    "storage.swift": _NO_DRIVER,
    "storage.oss": _NO_DRIVER,
    "auth.silly": "Dockyard has no silly auth (use htpasswd or token)",
    "http.tls.letsencrypt": "Dockyard does not fetch certificates; give http.tls.certificate and key",
}

ENV_PREFIXES = ("REGISTRY_", "DOCKYARD_")


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (if any), apply environment overrides, and build the typed config."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded
    env = os.environ if environ is None else environ
    for prefix in ENV_PREFIXES:
        for name in sorted(env):
            if name.startswith(prefix) and name not in _NOT_CONFIG_ENV:
                _apply_env(data, name[len(prefix) :], env[name], name)
    config: Config = build(Config, data, "", UNIMPLEMENTED_KEYS, REFUSED_KEYS)
    return config


# Variables with these prefixes that are not config overrides.
_NOT_CONFIG_ENV = frozenset({"DOCKYARD_E2E", "DOCKYARD_CONFIG", "DOCKYARD_TEST_S3_URL"})


def _apply_env(data: dict[str, Any], rest: str, value: str, env_name: str) -> None:
    path = _env_path(Config, rest.lower().split("_"))
    if path is None:
        for key, reason in REFUSED_KEYS.items():
            if (rest.lower() + "_").startswith(key.replace(".", "_") + "_"):
                raise ConfigError(f"{env_name}: {key}: {reason}")
        log.warning("ignoring environment variable %s: it names no config key", env_name)
        return
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = yaml.safe_load(value) if value.strip() else ""


def _env_path(cls: Any, parts: list[str]) -> list[str] | None:
    """Match `['storage','filesystem','rootdirectory']` against the dataclass tree."""
    if not parts:
        return None
    hints = get_type_hints(cls)
    for count in range(len(parts), 0, -1):
        key = "_".join(parts[:count])
        if key not in hints:
            continue
        if count == len(parts):
            return [key]
        inner = dataclass_of(hints[key])
        if inner is None:
            return None
        rest = _env_path(inner, parts[count:])
        if rest is not None:
            return [key, *rest]
    return None


__all__ = [
    "DRIVERS",
    "AccessConfig",
    "AccessRuleConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "HtpasswdConfig",
    "LoginLimitConfig",
    "TokenConfig",
    "TokenServerConfig",
    "build",
    "load_config",
    "parse_duration",
]
