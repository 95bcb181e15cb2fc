"""The configuration: one typed, frozen object, loaded once at start.

Keys are CNCF distribution's `config.yml` keys wherever the two overlap, so an existing
`registry:2` config file works unchanged; Dockyard's own additions have their own keys (all
documented in `config.example.yaml`). Environment variables override the file:
`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/x` (distribution's form) or `DOCKYARD_...` (ours,
applied last).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from registry.ui.config import UiConfig

log = logging.getLogger("dockyard.config")


class ConfigError(ValueError):
    """A bad configuration: the message names the key."""


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
class FilesystemConfig:
    rootdirectory: str = "./data"
    maxthreads: int = 100


@dataclass(frozen=True)
class S3Config:
    bucket: str = ""
    region: str = "us-east-1"
    regionendpoint: str = ""
    forcepathstyle: bool = False
    accesskey: str = ""
    secretkey: str = ""
    sessiontoken: str = ""
    rootdirectory: str = ""
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    storageclass: str = "STANDARD"
    chunksize: int = 10 * 1024 * 1024
    multipartcopychunksize: int = 32 * 1024 * 1024
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 32 * 1024 * 1024
    objectacl: str = "private"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    loglevel: str = "off"
    # Dockyard: seconds a presigned redirect URL stays valid; retries on throttling/timeouts.
    redirectexpiry: int = 1200
    maxretries: int = 5


@dataclass(frozen=True)
class InMemoryConfig:
    pass


@dataclass(frozen=True)
class DeleteConfig:
    enabled: bool = False


@dataclass(frozen=True)
class RedirectConfig:
    disable: bool = False


@dataclass(frozen=True)
class UploadPurgingConfig:
    enabled: bool = True
    age: str = "168h"
    interval: str = "24h"
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


@dataclass(frozen=True)
class StorageConfig:
    filesystem: FilesystemConfig | None = None
    s3: S3Config | None = None
    inmemory: InMemoryConfig | None = None
    delete: DeleteConfig = field(default_factory=DeleteConfig)
    redirect: RedirectConfig = field(default_factory=RedirectConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    @property
    def driver(self) -> str:
        if self.s3 is not None:
            return "s3"
        if self.inmemory is not None:
            return "inmemory"
        return "filesystem"

    @property
    def driver_options(self) -> Any:
        return {"s3": self.s3, "inmemory": self.inmemory}.get(self.driver) or self.filesystem or FilesystemConfig()


@dataclass(frozen=True)
class TLSConfig:
    certificate: str = ""
    key: str = ""
    clientcas: list[str] = field(default_factory=list)
    minimumtls: str = "tls1.2"


@dataclass(frozen=True)
class HTTPConfig:
    addr: str = "127.0.0.1:5000"
    net: Literal["tcp", "unix"] = "tcp"
    host: str = ""
    prefix: str = "/"
    secret: str = ""
    relativeurls: bool = False
    draintimeout: str = "30s"
    tls: TLSConfig = field(default_factory=TLSConfig)
    headers: dict[str, Any] = field(default_factory=dict)
    # Dockyard: worker processes (0 = one per core) and whether to trust X-Forwarded-* headers.
    workers: int = 0
    trustforwardedheaders: bool = False


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
    leeway: str = "60s"


@dataclass(frozen=True)
class TokenServerConfig:
    """Dockyard's built-in token server (`auth.tokenserver`); its presence selects token mode."""

    path: str = "/auth/token"
    jwkspath: str = "/auth/jwks.json"
    expiration: str = "5m"
    refreshexpiration: str = "720h"
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
    """Failed logins allowed per client address and per user name within `window`."""

    failures: int = 10
    window: str = "5m"


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: HtpasswdConfig | None = None
    token: TokenConfig | None = None
    tokenserver: TokenServerConfig | None = None
    access: AccessConfig | None = None
    loginlimit: LoginLimitConfig = field(default_factory=LoginLimitConfig)

    @property
    def mode(self) -> Literal["none", "htpasswd", "token"]:
        if self.token is not None or self.tokenserver is not None:
            return "token"
        if self.htpasswd is not None:
            return "htpasswd"
        return "none"


@dataclass(frozen=True)
class GCConfig:
    """Dockyard: garbage collection (`dockyard gc`, and inside the server when `interval` is set)."""

    # Empty or 0: the server never collects by itself (run `dockyard gc` from cron instead).
    interval: str = ""
    # Blobs and links younger than this are never collected: it covers pushes in flight.
    graceperiod: str = "1h"
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
    ttl: str = "168h"
    # Dockyard: the name prefix mirrored names carry here (`dockerhub/library/nginx`).
    prefix: str = ""
    # Dockyard: this upstream also serves names that carry no prefix and are not local repositories.
    default: bool = False
    # Dockyard: how long a revalidation or fetch may take before cached content is served stale instead.
    timeout: str = "10s"
    # Dockyard: the cache's size limit (`200GiB`); GC first drops the least recently pulled repositories.
    maxsize: str = ""


@dataclass(frozen=True)
class ProxyConfig:
    """A pull-through cache: `remoteurl` (distribution's form) mirrors one upstream as the whole
    registry; `upstreams` mirrors several, each under its prefix, beside local repositories."""

    remoteurl: str = ""
    username: str = ""
    password: str = ""
    ttl: str = "168h"
    timeout: str = "10s"
    maxsize: str = ""
    upstreams: list[UpstreamConfig] = field(default_factory=list)
    # Dockyard: a fill whose clients all went away still completes when at most this many bytes remain.
    backgroundlimit: int = 2 * 1024 * 1024 * 1024


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

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.http.addr.rpartition(":")
        return (host.strip("[]") or "0.0.0.0"), int(port or 5000)


# distribution keys that Dockyard accepts but does not act on: reported at start.
UNIMPLEMENTED_KEYS = frozenset(
    {
        "notifications",
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
        "http.tls.letsencrypt",
        "http.tls.ciphersuites",
        "storage.azure",
        "storage.gcs",
        "storage.swift",
        "storage.oss",
        "storage.tag",
        "storage.s3.multipartcombinesmallpart",
        "log.hooks",
        "log.reportcaller",
        "auth.silly",
    }
)

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
    config: Config = build(Config, data, "")
    return config


# Variables with these prefixes that are not config overrides.
_NOT_CONFIG_ENV = frozenset({"DOCKYARD_E2E", "DOCKYARD_CONFIG", "DOCKYARD_TEST_S3_URL"})


def _apply_env(data: dict[str, Any], rest: str, value: str, env_name: str) -> None:
    path = _env_path(Config, rest.lower().split("_"))
    if path is None:
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
        inner = _dataclass_of(hints[key])
        if inner is None:
            return None
        rest = _env_path(inner, parts[count:])
        if rest is not None:
            return [key, *rest]
    return None


def _dataclass_of(tp: Any) -> Any:
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def build(cls: Any, data: Any, where: str) -> Any:
    """Turn plain YAML data into the dataclass `cls`, naming the key of the first error."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in hints:
            if dotted in UNIMPLEMENTED_KEYS or (str(key) in UNIMPLEMENTED_KEYS and not where):
                log.warning("config key %s is a distribution key that Dockyard does not implement; ignored", dotted)
                continue
            raise ConfigError(f"unknown config key {dotted}")
        kwargs[key] = _convert(hints[key], value, dotted)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or value == "":
            inner = _dataclass_of(tp)
            return build(inner, {}, where) if inner is not None else None
        return _convert(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            value = [value]
        (item,) = get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string")
        return str(value)
    return value


def parse_duration(text: str) -> float:
    """Go-style durations as distribution writes them: `30s`, `5m`, `168h`, `1h30m`."""
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else ch
        if unit not in units or not number:
            raise ValueError(f"invalid duration {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        total += float(number)  # bare number: seconds
    return total


__all__ = ["Config", "ConfigError", "load_config", "parse_duration"]
