"""/healthz, /readyz and /metrics over the app (httpx's ASGI transport), and the access log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from registry.app import create_app
from registry.config import ConfigError, load_config
from registry.logformat import JsonFormatter
from storage_backends import BackendError
from storage_backends.memory import MemoryBackend
from tests.ops.registry_client import push_image


class FailingBackend(MemoryBackend):
    """Storage that can be switched to fail every write, as a full disk or a lost bucket does."""

    broken = False

    async def put(self, key: str, data: bytes) -> None:
        if self.broken:
            raise BackendError("disk full")
        await super().put(key, data)


def app_for(backend: MemoryBackend | None = None, **env: str) -> Any:
    environ = {"REGISTRY_STORAGE_INMEMORY": "", "REGISTRY_STORAGE_DELETE_ENABLED": "true", **env}
    return create_app(load_config(None, environ), backend=backend or MemoryBackend())


async def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(app_for()) as c:
        yield c


async def test_healthz_answers_without_credentials(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-request-id"]


async def test_readyz_reports_storage_that_cannot_be_written() -> None:
    backend = FailingBackend()
    async with await client_for(app_for(backend)) as c:
        assert (await c.get("/readyz")).json() == {"status": "ok", "storage": "ok"}
        backend.broken = True
        await asyncio.sleep(1.1)  # past the one-second cache of the last answer
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert "disk full" in r.json()["storage"]
    assert [k for k in backend.files if k.startswith("dockyard/health")] == []


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1", b'{"config":1}', [b"layer-bytes"])
    await client.get("/v2/team/app/manifests/v1")
    await client.get("/v2/team/app/manifests/missing")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = "/v2/{name}/manifests/{reference}"
    assert f'dockyard_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0' in text
    assert f'dockyard_http_requests_total{{method="GET",route="{route}",status="404"}} 1.0' in text
    assert f'dockyard_http_requests_total{{method="PUT",route="{route}",status="201"}} 1.0' in text
    assert 'dockyard_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text
    assert 'dockyard_http_received_bytes_total{route="/v2/{name}/blobs/uploads/{upload_id}"}' in text
    assert "dockyard_uploads_in_progress 0.0" in text
    assert "dockyard_storage_errors_total" in text or "dockyard_storage_errors" in text
    assert "team/app" not in text  # raw paths never become labels


async def test_metrics_protected_by_a_token() -> None:
    async with await client_for(app_for(DOCKYARD_METRICS_TOKEN="s3cret")) as c:
        r = await c.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await c.get("/metrics", headers={"Authorization": "Bearer s3cret"})).status_code == 200


async def test_metrics_disabled_and_moved() -> None:
    async with await client_for(app_for(DOCKYARD_METRICS_ENABLED="false")) as c:
        assert (await c.get("/metrics")).status_code == 404
    async with await client_for(app_for(DOCKYARD_METRICS_PATH="/internal/metrics")) as c:
        assert (await c.get("/internal/metrics")).status_code == 200
    with pytest.raises(ConfigError, match="outside /v2/"):
        app_for(DOCKYARD_METRICS_PATH="/v2/metrics")


async def test_storage_errors_are_counted() -> None:
    backend = FailingBackend()
    async with await client_for(app_for(backend)) as c:
        backend.broken = True
        r = await c.post("/v2/app/blobs/uploads/")
        assert r.status_code == 503
        text = (await c.get("/metrics")).text
    assert 'dockyard_storage_errors_total{backend="inmemory",operation="put"} 1.0' in text


async def test_one_json_access_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    async with await client_for(app_for()) as c:
        with caplog.at_level(logging.INFO, logger="dockyard.access"):
            await push_image(c, "team/app", "v1", b'{"config":1}', [b"layer-bytes"])
            caplog.clear()
            r = await c.get("/v2/team/app/manifests/v1", headers={"X-Request-Id": "proxy-id-12345"})
    assert r.headers["x-request-id"] == "proxy-id-12345"
    (record,) = caplog.records
    line = json.loads(JsonFormatter({"service": "dockyard"}).format(record))
    assert line["request_id"] == "proxy-id-12345"
    assert line["repository"] == "team/app"
    assert line["action"] == "pull"
    assert line["status"] == 200
    assert line["bytes_out"] == len(r.content)
    assert line["route"] == "/v2/{name}/manifests/{reference}"
    assert line["duration_ms"] >= 0
    assert line["service"] == "dockyard" and line["level"] == "info" and line["time"].endswith("Z")
    assert "user" in line
    # the human format carries the same facts
    text = record.getMessage()
    assert "GET /v2/team/app/manifests/v1 200" in text and "repo=team/app" in text and "action=pull" in text


async def test_a_made_up_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32
