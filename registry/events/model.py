"""Events as distribution 2.8 writes them: the same fields, in the same order, left out when empty
(Go's `omitempty`), so receivers written for `registry:2` read them unchanged."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

# What distribution calls every blob: it does not look inside.
BLOB_MEDIA_TYPE = "application/octet-stream"
ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
# distribution's descriptor fields, in its struct's order.
_DESCRIPTOR_KEYS = ("mediaType", "size", "digest", "urls", "annotations", "platform")


@dataclass(frozen=True)
class Source:
    """The node that generated an event: `host:port` and an id that changes with every start."""

    addr: str
    instance_id: str

    @classmethod
    def here(cls, port: int) -> Source:
        return cls(f"{socket.gethostname()}:{port}", str(uuid.uuid4()))

    def record(self) -> dict[str, str]:
        return {"addr": self.addr, "instanceID": self.instance_id}


def timestamp(now_ns: int | None = None) -> str:
    """RFC 3339 in UTC with nanoseconds, trailing zeros dropped (Go's `time.RFC3339Nano`)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def request_record(request: Request) -> dict[str, str]:
    client = request.scope.get("client")
    addr = f"{client[0]}:{client[1]}" if client else ""
    record = {
        "id": str(request.scope.get("dockyard.request_id") or ""),
        "addr": addr,
        "host": request.headers.get("host", ""),
        "method": request.method,
        "useragent": request.headers.get("user-agent", ""),
    }
    # `id`, `method` and `useragent` are always written; the others only when known.
    return {key: value for key, value in record.items() if value or key in ("id", "method", "useragent")}


def actor_record(request: Request) -> dict[str, str]:
    user = request.scope.get("dockyard.user")
    return {"name": str(user)} if user else {}


def make_event(action: str, target: dict[str, Any], request: Request, source: Source) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp(),
        "action": action,
        "target": {key: value for key, value in target.items() if value not in (None, "", 0, [])},
        "request": request_record(request),
        "actor": actor_record(request),
        "source": source.record(),
    }


def blob_target(repository: str, digest: str, size: int, url: str, from_repository: str = "") -> dict[str, Any]:
    return {
        "mediaType": BLOB_MEDIA_TYPE,
        "size": size,
        "digest": digest,
        "length": size,
        "repository": repository,
        "fromRepository": from_repository,
        "url": url,
    }


def manifest_target(
    repository: str,
    media_type: str,
    digest: str,
    body: bytes,
    url: str,
    tag: str = "",
    include_references: bool = False,
) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "size": len(body),
        "digest": digest,
        "length": len(body),
        "repository": repository,
        "url": url,
        "tag": tag,
        "references": references(body) if include_references else None,
    }


def deleted_target(repository: str, digest: str = "", tag: str = "") -> dict[str, Any]:
    """A manifest or blob delete names the digest; a tag delete names the tag."""
    return {"digest": digest, "repository": repository, "tag": tag}


def references(body: bytes) -> list[dict[str, Any]]:
    """What a manifest references, as distribution lists it: config then layers, or an index's manifests."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(document, dict):
        return []
    entries: list[Any] = []
    if isinstance(document.get("manifests"), list):
        entries = document["manifests"]
    else:
        if isinstance(document.get("config"), dict):
            entries.append(document["config"])
        if isinstance(document.get("layers"), list):
            entries.extend(document["layers"])
    found = []
    for entry in entries:
        if isinstance(entry, dict):
            found.append({key: entry[key] for key in _DESCRIPTOR_KEYS if entry.get(key) not in (None, "", 0, [], {})})
    return found
