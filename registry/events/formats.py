"""What an endpoint receives: distribution's envelope or CloudEvents, several events to a request
where the endpoint takes them, and the signature header."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import orjson

from registry.events.model import ENVELOPE_MEDIA_TYPE

CLOUDEVENTS_MEDIA_TYPE = "application/cloudevents+json"
CLOUDEVENTS_BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
SIGNATURE_HEADER = "X-Dockyard-Signature"
CLOUDEVENTS_TYPE_PREFIX = "dev.dockyard.registry."
# A request holds fewer events than `maxevents` when they would make its body larger than this
# (but never none: a single larger event goes alone).
MAX_BODY_BYTES = 1024 * 1024


def cloudevent(event: dict[str, Any]) -> dict[str, Any]:
    """CloudEvents 1.0, structured mode: the distribution event is the `data`."""
    target = event.get("target", {})
    subject = str(target.get("repository", ""))
    if target.get("tag"):
        subject += f":{target['tag']}"
    if target.get("digest"):
        subject += f"@{target['digest']}"
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": f"dockyard://{event.get('source', {}).get('addr', '')}",
        "type": CLOUDEVENTS_TYPE_PREFIX + str(event.get("action", "")),
        "subject": subject,
        "time": event.get("timestamp"),
        "datacontenttype": "application/json",
        "data": event,
    }


def bodies(
    events: list[dict[str, Any]], format: str, max_events: int, max_bytes: int = MAX_BODY_BYTES
) -> Iterator[tuple[bytes, str, int]]:
    """The requests that carry `events`, in order: (body, content type, how many events it holds).

    distribution: its envelope `{"events": [...]}`. cloudevents: one structured event per request
    when `max_events` is 1, else batch mode (a JSON array of structured events)."""
    chunk: list[bytes] = []
    size = 0
    for event in events:
        item = orjson.dumps(cloudevent(event) if format == "cloudevents" else event)
        if chunk and (len(chunk) >= max_events or size + len(item) > max_bytes):
            yield _wrap(chunk, format, max_events)
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield _wrap(chunk, format, max_events)


def _wrap(chunk: list[bytes], format: str, max_events: int) -> tuple[bytes, str, int]:
    if format != "cloudevents":
        return b'{"events":[' + b",".join(chunk) + b"]}", ENVELOPE_MEDIA_TYPE, len(chunk)
    if max_events == 1:
        return chunk[0], CLOUDEVENTS_MEDIA_TYPE, 1
    return b"[" + b",".join(chunk) + b"]", CLOUDEVENTS_BATCH_MEDIA_TYPE, len(chunk)


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with the endpoint's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
