from __future__ import annotations

import httpx

from tests.api.conftest import error_code


async def test_base_endpoint_announces_api_version(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.headers["x-request-id"]


async def test_unknown_endpoint_has_json_error(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/foo/unknown/thing")
    assert r.status_code == 404
    assert error_code(r) == "UNSUPPORTED"


async def test_wrong_method_is_405_with_json(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/foo/tags/list")
    assert r.status_code == 405
    assert error_code(r) == "UNSUPPORTED"


async def test_invalid_names_are_name_invalid(client: httpx.AsyncClient) -> None:
    for name in ["Upper/case", "a/%2E%2E/b", "-lead", "a//b", "x" * 256, "trailing/"]:
        r = await client.get(f"/v2/{name}/tags/list")
        assert r.status_code == 400, name
        assert error_code(r) == "NAME_INVALID", name


async def test_valid_nested_name_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/team-a/sub.project/app_x/tags/list")
    assert r.status_code == 404
    assert error_code(r) == "NAME_UNKNOWN"
