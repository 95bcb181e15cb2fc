"""Project-scoped names and the labels that find a project's objects again (docker-compose 1.29's)."""

from __future__ import annotations

__all__ = [
    "CONFIG_HASH",
    "PROJECT",
    "SERVICE",
    "container_name",
    "image_name",
    "network_name",
    "volume_name",
]

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
CONFIG_HASH = "com.docker.compose.config-hash"
NETWORK = "com.docker.compose.network"


def container_name(project: str, service: str, index: int = 1) -> str:
    """PROJECT_SERVICE_N, as docker-compose 1.29 names containers."""
    return f"{project}_{service}_{index}"


def network_name(project: str, key: str, entry: dict[str, object]) -> str:
    """PROJECT_KEY, or the network's own `name:`."""
    return str(entry.get("name") or f"{project}_{key}")


def volume_name(project: str, key: str, entry: dict[str, object]) -> str:
    return str(entry.get("name") or f"{project}_{key}")


def image_name(project: str, service: str) -> str:
    """The image a service with `build:` and no `image:` gets: PROJECT_SERVICE."""
    return f"{project}_{service}"
