"""`WWW-Authenticate` challenges, and the public URL they send clients to.

Behind a TLS-terminating proxy the server sees plain HTTP on an inside address, yet the realm
must be the URL the client can reach. It comes from config (`auth.token.realm`, or `http.host`),
or else from the request: `X-Forwarded-Proto`/`X-Forwarded-Host` when `http.trustforwardedheaders`
is on, the request's own scheme and `Host` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from auth.base import Access
from auth.scopes import format_scopes, scopes_for

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def public_base(conn: HTTPConnection, host: str = "", trust_forwarded: bool = False) -> str:
    """`scheme://host[:port]` as the client sees this server."""
    if host:
        return host.rstrip("/")
    scheme = conn.url.scheme
    netloc = conn.headers.get("host", "")
    if trust_forwarded:
        proto = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = conn.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if forwarded_host:
            netloc = forwarded_host
    if not _HOST.fullmatch(netloc):
        server = conn.scope.get("server")
        netloc = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scheme}://{netloc}"


def basic(realm: str) -> dict[str, str]:
    return {"WWW-Authenticate": f"Basic realm={_quote(realm)}"}


def bearer(realm: str, service: str, accesses: Sequence[Access] = (), error: str = "") -> dict[str, str]:
    parts = [f"realm={_quote(realm)}", f"service={_quote(service)}"]
    if accesses:
        parts.append(f"scope={_quote(format_scopes(scopes_for(accesses)))}")
    if error:
        parts.append(f"error={_quote(error)}")
    return {"WWW-Authenticate": "Bearer " + ",".join(parts)}


def needed(accesses: Sequence[Access]) -> list[Access]:
    """What a request really needs: as in distribution, pushing also needs pull on the repository,
    since every client reads what it writes (blob HEADs, manifest checks)."""
    result: list[Access] = []
    for access in accesses:
        if access.action == "push":
            pull = Access(access.type, access.name, "pull")
            if pull not in result:
                result.append(pull)
        if access not in result:
            result.append(access)
    return result


def detail(accesses: Sequence[Access]) -> list[dict[str, str]]:
    """The error detail distribution sends with a 401: the accesses that were needed."""
    return [{"Type": a.type, "Name": a.name, "Action": a.action} for a in accesses]
