"""Platforms (`os/arch[/variant]`) and choosing a manifest from an image index (image-index.md)."""

from __future__ import annotations

import platform as _host
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# `uname -m` → GOARCH (and variant), the names image configs and indexes use.
_MACHINES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}
# containerd's normalisation: variants a platform implies when none is written.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


class InvalidPlatform(ValueError):
    pass


class NoMatchingPlatform(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidPlatform(f"invalid platform {text!r}: expected os/arch[/variant]")
        arch, variant = parts[1], parts[2] if len(parts) == 3 else None
        if arch in ("x86_64", "x86-64"):
            arch = "amd64"
        elif arch == "aarch64":
            arch = "arm64"
        return cls(parts[0], arch, variant)

    @classmethod
    def host(cls) -> Platform:
        arch, variant = _MACHINES.get(_host.machine().lower(), (_host.machine().lower(), None))
        return cls(_host.system().lower() or "linux", arch, variant)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Platform:
        """The platform of an index entry's `platform` object or of an image config."""
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), data.get("variant") or None)

    def matches(self, other: Platform) -> bool:
        """Whether an image built for `other` runs here: os and arch equal, variants equal once defaulted."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        default = _DEFAULT_VARIANTS.get(self.architecture)
        return (other.variant or default) == self.variant

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def select_manifest(manifests: Iterable[Mapping[str, Any]], wanted: Platform) -> Mapping[str, Any]:
    """The first index entry built for `wanted`. Entries without a platform (attestations, artefacts) never
    match; an entry naming exactly the wanted variant beats one that only matches by default."""
    candidates = [m for m in manifests if isinstance(m.get("platform"), Mapping)]
    matching = [m for m in candidates if wanted.matches(Platform.of(m["platform"]))]
    if not matching:
        available = ", ".join(sorted({str(Platform.of(m["platform"])) for m in candidates})) or "none"
        raise NoMatchingPlatform(f"no image for platform {wanted} in the index (available: {available})")
    exact = [m for m in matching if Platform.of(m["platform"]).variant == wanted.variant]
    return (exact or matching)[0]
