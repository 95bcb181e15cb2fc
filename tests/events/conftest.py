"""Shared pieces of the webhook tests: a config with endpoints, and a registry serving it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def endpoint(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "timeout": "1s", "threshold": 2, "backoff": "200ms", **options}


def write_config(path: Path, endpoints: list[dict[str, Any]], **sections: Any) -> Path:
    document: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "notifications": {"events": {"includereferences": True}, "endpoints": endpoints},
        **sections,
    }
    path.write_text(yaml.safe_dump(document))
    return path
