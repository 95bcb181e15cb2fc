"""A typed check of a Compose file, with Docker Compose's wording naming the key."""

from __future__ import annotations

__all__ = ["ComposeError", "validate"]


class ComposeError(Exception):
    """An invalid Compose file; the message names the key as Docker Compose does."""


_STR = (str,)
_STR_OR_LIST = (str, list)
_LIST_OR_MAP = (list, dict)

_SERVICE_KEYS: dict[str, tuple[type, ...]] = {
    "image": _STR,
    "build": (str, dict),
    "command": _STR_OR_LIST,
    "entrypoint": _STR_OR_LIST,
    "environment": _LIST_OR_MAP,
    "env_file": _STR_OR_LIST,
    "ports": (list,),
    "volumes": (list,),
    "networks": _LIST_OR_MAP,
    "depends_on": _LIST_OR_MAP,
    "links": (list,),
    "restart": _STR,
    "healthcheck": (dict,),
    "container_name": _STR,
    "hostname": _STR,
    "working_dir": _STR,
    "user": _STR,
    "labels": _LIST_OR_MAP,
    "expose": (list,),
    "dns": _STR_OR_LIST,
}
_TOP_KEYS = {"version", "services", "networks", "volumes", "name"}


def validate(document: dict[str, object]) -> None:
    """Raise ComposeError for the first key with an unknown name or a wrong type."""
    for key in document:
        if key not in _TOP_KEYS and not str(key).startswith("x-"):
            raise ComposeError(f"Additional property {key} is not allowed")
    services = document.get("services")
    if not isinstance(services, dict):
        raise ComposeError("services must be a mapping")
    for name, service in services.items():
        if not isinstance(service, dict):
            raise ComposeError(f"services.{name} must be a mapping")
        for key, value in service.items():
            if str(key).startswith("x-"):
                continue
            allowed = _SERVICE_KEYS.get(key)
            if allowed is None:
                raise ComposeError(f"services.{name} Additional property {key} is not allowed")
            if not isinstance(value, allowed):
                raise ComposeError(f"services.{name}.{key} contains an invalid type")
            if isinstance(value, list):
                for item in value:
                    if not isinstance(item, (str, int, dict)):
                        raise ComposeError(f"services.{name}.{key} contains an invalid type")
        if "image" not in service and "build" not in service:
            raise ComposeError(f"Service {name} has neither an image nor a build context specified")
    for section in ("networks", "volumes"):
        value = document.get(section)
        if value is not None and not isinstance(value, dict):
            raise ComposeError(f"{section} must be a mapping")
