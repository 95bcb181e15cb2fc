"""What the client sent: its `Authorization` header and its address."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import HTTPConnection

MAX_HEADER_BYTES = 16 * 1024


class MalformedCredentials(ValueError):
    """An `Authorization` header that cannot be read; the message never repeats its content."""


@dataclass(frozen=True)
class Basic:
    user: str
    password: str

    def __repr__(self) -> str:
        return f"Basic(user={self.user!r}, password=***)"


@dataclass(frozen=True)
class Bearer:
    token: str

    def __repr__(self) -> str:
        return "Bearer(***)"


def parse_authorization(header: str | None) -> Basic | Bearer | None:
    """Basic (RFC 7617) or Bearer (RFC 6750) credentials; None without a header."""
    if header is None:
        return None
    if len(header) > MAX_HEADER_BYTES:
        raise MalformedCredentials("Authorization header too large")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value:
        raise MalformedCredentials("malformed Authorization header")
    scheme = scheme.lower()
    if scheme == "bearer":
        return Bearer(value)
    if scheme != "basic":
        raise MalformedCredentials("unsupported authorization scheme")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise MalformedCredentials("Basic credentials are not valid base64 of UTF-8 text") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise MalformedCredentials("Basic credentials must be user:password")
    return Basic(user, password)


def client_address(conn: HTTPConnection, trust_forwarded: bool) -> str:
    """The caller's address; behind a trusted proxy, the first hop of `X-Forwarded-For`."""
    if trust_forwarded:
        forwarded = conn.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return conn.client.host if conn.client else "unknown"
