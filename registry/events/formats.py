"""What an endpoint receives: distribution's envelope (one event) or a CloudEvent, and the signature header."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from registry.events.model import ENVELOPE_MEDIA_TYPE

CLOUDEVENTS_MEDIA_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Dockyard-Signature"
CLOUDEVENTS_TYPE_PREFIX = "dev.dockyard.registry."


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


def encode(raw: bytes, format: str) -> tuple[bytes, str] | None:
    """The request body for a stored event (its JSON) in the endpoint's format, and its content type;
    None when the stored bytes are not an event."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or "id" not in event:
        return None
    if format == "cloudevents":
        return orjson.dumps(cloudevent(event)), CLOUDEVENTS_MEDIA_TYPE
    # The stored bytes go out as they are: no second encoding.
    return b'{"events":[' + raw + b"]}", ENVELOPE_MEDIA_TYPE


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with the endpoint's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
