"""Content digests (`algorithm:encoded`) as the OCI image spec defines them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hashlib

# Registered algorithms and the exact shape of their encoded part (image-spec descriptor.md).
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"^[a-f0-9]{64}$"),
    "sha512": re.compile(r"^[a-f0-9]{128}$"),
}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class InvalidDigest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not _GRAMMAR.match(text):
            raise InvalidDigest(f"invalid digest {text!r}")
        algorithm, _, encoded = text.partition(":")
        pattern = ALGORITHMS.get(algorithm)
        if pattern is None:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        if not pattern.match(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest {encoded!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        import hashlib

        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except InvalidDigest:
        return False
    return True


def new_hasher(algorithm: str) -> hashlib._Hash:
    # hashlib is imported when first used: loading it (OpenSSL) costs ~2 ms, and a container's
    # start parses references and digests without hashing anything.
    import hashlib

    if algorithm not in ALGORITHMS:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)
