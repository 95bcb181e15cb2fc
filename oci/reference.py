"""Image references: `[host[:port]/]name[:tag][@digest]`, normalised with Docker's defaults, and the
grammar of repository names and tags they are made of.

A reference without a registry host means Docker Hub (`docker.io`), a single-component name on Docker Hub is
an official image (`library/` is prepended), and a reference with neither tag nor digest means `:latest`.
The first path component is a host when it contains a `.` or a `:`, or is `localhost` (distribution's
`reference/normalize.go`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from oci.digest import Digest, InvalidDigest

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
OFFICIAL_NAMESPACE = "library/"
# Docker Hub is addressed by one name and served from another.
_REGISTRY_ENDPOINTS = {"docker.io": "registry-1.docker.io"}
_LEGACY_HUB_NAMES = frozenset({"index.docker.io", "registry-1.docker.io"})

# Repository names and tags (distribution-spec: Pulling manifests).
NAME_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Many clients cap host/name at 255 characters; so does distribution.
MAX_NAME_LENGTH = 255

_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"^(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*|\[[a-fA-F0-9:.]+\])(?::[0-9]+)?$")


class InvalidReference(ValueError):
    pass


def valid_name(name: str) -> bool:
    """Whether `name` is a repository name as the distribution spec writes them (no host, no tag)."""
    return len(name) <= MAX_NAME_LENGTH and NAME_RE.match(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.match(tag) is not None


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text or text != text.strip():
            raise InvalidReference(f"invalid reference format: {text!r}")
        remainder, digest = text, None
        if "@" in text:
            remainder, _, digest = text.partition("@")
            try:
                Digest.parse(digest)
            except InvalidDigest as exc:
                raise InvalidReference(f"invalid reference format: {exc}") from None
        tag = None
        colon, slash = remainder.rfind(":"), remainder.rfind("/")
        if colon > slash:
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not valid_tag(tag):
                raise InvalidReference(f"invalid tag {tag!r} in {text!r}")
        registry, repository = _split_registry(remainder)
        if not _HOST_RE.match(registry):
            raise InvalidReference(f"invalid registry host {registry!r} in {text!r}")
        if repository != repository.lower():
            raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
        if not valid_name(repository):
            raise InvalidReference(f"invalid repository name {repository!r} in {text!r}")
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        """The fully qualified repository, `host/name`."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes in `/v2/<name>/manifests/<reference>`: the digest when there is one."""
        ref = self.digest or self.tag
        assert ref is not None
        return ref

    @property
    def endpoint(self) -> str:
        """The host (and port) that serves this registry's API."""
        return _REGISTRY_ENDPOINTS.get(self.registry, self.registry)

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> Reference:
        return replace(self, digest=digest)

    def familiar(self) -> str:
        """The short form Docker prints: `busybox:latest` for `docker.io/library/busybox:latest`."""
        return _suffix(familiar_name(self.registry, self.repository), self.tag, self.digest)

    def __str__(self) -> str:
        return _suffix(self.name, self.tag, self.digest)


def familiar_name(registry: str, repository: str) -> str:
    if registry != DEFAULT_REGISTRY:
        return f"{registry}/{repository}"
    return repository.removeprefix(OFFICIAL_NAMESPACE)


def normalize(text: str) -> str:
    return str(Reference.parse(text))


def is_loopback(registry: str) -> bool:
    """Whether a registry host is this machine: Docker lets those speak plain HTTP without configuration."""
    host = registry
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first or first == "localhost") or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, name
    if registry in _LEGACY_HUB_NAMES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = OFFICIAL_NAMESPACE + repository
    return registry, repository


def _suffix(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
