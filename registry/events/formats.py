"""What an endpoint receives: distribution's envelope or a CloudEvent, and the signature header."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from registry.events.model import ENVELOPE_MEDIA_TYPE

CLOUDEVENTS_MEDIA_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Dockyard-Signature"
CLOUDEVENTS_TYPE_PREFIX = "dev.dockyard.registry."


def distribution_body(event: dict[str, Any]) -> bytes:
    """One event in distribution's envelope, indented as distribution indents it."""
    return json.dumps({"events": [event]}, indent=3, ensure_ascii=False).encode()


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


def encode(event: dict[str, Any], format: str) -> tuple[bytes, str]:
    """The request body for `event` in the endpoint's format, and its content type."""
    if format == "cloudevents":
        return json.dumps(cloudevent(event), ensure_ascii=False).encode(), CLOUDEVENTS_MEDIA_TYPE
    return distribution_body(event), ENVELOPE_MEDIA_TYPE


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with the endpoint's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
