"""One upstream registry: its client (Basic or token auth, from `oci.client`), the name it gives a
mirrored repository, and what its answers mean to the cache.

Credentials live in the client only: nothing here logs them, and errors name the upstream by its
prefix or host, never by a URL that could carry them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import httpx

from oci.client import ClientError, Credentials, RegistryClient
from registry.config import ConfigError, UpstreamConfig

DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "docker.io", "index.docker.io"})


class Failure(Enum):
    """Why the upstream gave no usable answer."""

    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    DENIED = "denied"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # unreachable, too slow, a 5xx, or an answer that is not a registry's
    CORRUPT = "corrupt"  # bytes that do not match their digest


class UpstreamError(Exception):
    def __init__(self, failure: Failure, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Head:
    digest: str | None
    media_type: str
    size: int | None


class Upstream:
    def __init__(self, config: UpstreamConfig, where: str) -> None:
        parts = urlsplit(config.remoteurl)
        if parts.username or parts.password:
            raise ConfigError(f"{where}.remoteurl: put credentials in username and password, not in the URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}.remoteurl: {config.remoteurl!r} is not an http(s) URL")
        self.ttl: float = config.ttl
        # Zero (an empty value) would fail every request at once: the 10 s default instead.
        self.timeout: float = config.timeout or 10.0
        self.host = parts.netloc
        self.prefix = config.prefix.strip("/")
        self.default = config.default
        # Metrics and logs name an upstream by its prefix, else its host: never by anything secret.
        self.label = self.prefix or self.host
        self.is_docker_hub = (parts.hostname or "") in DOCKER_HUB_HOSTS
        self._credentials = Credentials(config.username, config.password) if config.username else None
        self._insecure = parts.scheme == "http"
        self._client: RegistryClient | None = None

    @property
    def client(self) -> RegistryClient:
        # Made on first use, so a config can be checked (`Routing`) without opening connections.
        if self._client is None:
            self._client = RegistryClient(
                self.host, self._credentials, insecure=self._insecure, timeout=max(self.timeout, 60.0)
            )
        return self._client

    def remote_name(self, name: str) -> str:
        """The upstream's name for a repository: Docker Hub keeps official images under `library/`."""
        if self.is_docker_hub and "/" not in name:
            return f"library/{name}"
        return name

    def answers_ns(self, ns: str) -> bool:
        """Whether containerd's `?ns=<registry host>` names this upstream."""
        ns = ns.lower()
        return ns in (self.prefix.lower(), self.host.lower()) or (self.is_docker_hub and ns in DOCKER_HUB_HOSTS)

    async def open(
        self,
        method: str,
        repository: str,
        path: str,
        headers: dict[str, str] | None = None,
        within: float | None = None,
    ) -> httpx.Response:
        """A response with status 200 (body unread, the caller closes it), or an `UpstreamError`."""
        try:
            async with asyncio.timeout(within):
                response = await self.client.open(method, repository, path, headers)
        except TimeoutError:
            raise UpstreamError(Failure.UNAVAILABLE, f"upstream {self.label} did not answer in time") from None
        except ClientError as exc:
            raise UpstreamError(Failure.UNAVAILABLE, f"upstream {self.label} unreachable: {_short(exc)}") from None
        if response.status_code in (200, 206):
            return response
        await response.aclose()
        raise self._refusal(response)

    def _refusal(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        if status == 404:
            return UpstreamError(Failure.NOT_FOUND, f"not found on upstream {self.label}")
        if status == 401:
            return UpstreamError(
                Failure.UNAUTHORIZED,
                f"upstream {self.label} requires credentials for this repository (or it does not exist there)",
            )
        if status == 403:
            return UpstreamError(Failure.DENIED, f"upstream {self.label} denied access to this repository")
        if status == 429:
            return UpstreamError(
                Failure.RATE_LIMITED, f"upstream {self.label} is rate limiting", response.headers.get("retry-after")
            )
        return UpstreamError(Failure.UNAVAILABLE, f"upstream {self.label} answered {status}")

    async def head(
        self, repository: str, path: str, headers: dict[str, str] | None = None, within: float | None = None
    ) -> Head:
        response = await self.open("HEAD", repository, path, headers, within)
        length = response.headers.get("content-length")
        return Head(
            response.headers.get("docker-content-digest"),
            response.headers.get("content-type", "application/octet-stream").split(";")[0].strip(),
            int(length) if length and length.isdigit() else None,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."
