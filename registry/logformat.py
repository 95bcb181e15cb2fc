"""Log output: one JSON object per line when `log.formatter` is json (or logstash), a readable
line otherwise. The access log's fields (request id, user, repository, action, status, bytes,
duration) travel on the record as `access`, so the JSON line carries them as top-level keys."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from registry.config import Config

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        # log.fields from the config: constant keys on every line (service, environment, ...).
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        entry.update(self._fields)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry["msg"] = "request"
            entry.update(access)
        else:
            entry["msg"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(config: Config) -> None:
    """Route every logger (ours, uvicorn's) through one handler on stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if config.log.formatter in ("json", "logstash"):
        handler.setFormatter(JsonFormatter(config.log.fields))
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS.get(config.log.level, logging.INFO))
    # httpx logs every request URL at INFO, and an upstream's token URL names the mirror's account:
    # the mirror logs its upstream traffic itself, without credentials.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    if config.log.accesslog.disabled:
        logging.getLogger("dockyard.access").disabled = True
