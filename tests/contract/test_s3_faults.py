"""The S3 backend under failure: throttling and dropped connections are retried until the work is
done; refusals and an endpoint that never recovers end as BackendError, promptly."""

from __future__ import annotations

import time

import pytest

from storage_backends import BackendError, StorageBackend, open_backend
from storage_backends.options import S3Options
from tests.contract.conftest import S3_TEST_SIZES
from tests.contract.s3_faults import Plan, fault_proxy
from tests.s3server import S3Endpoint
from typedconfig import build

MiB = 1024 * 1024


def backend_through(endpoint: S3Endpoint, url: str, **options: object) -> StorageBackend:
    section = endpoint.options(**S3_TEST_SIZES, **options)
    section["regionendpoint"] = url
    return open_backend("s3", build(S3Options, section, "storage.s3"))


async def workload(backend: StorageBackend) -> None:
    """Every kind of request the registry makes, checked for the right result."""
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB
    await backend.put("f/small", b"link")
    assert await backend.get("f/small") == b"link"
    for piece in (data[:100], data[100:], b"end"):
        writer = await backend.writer("f/up", append=True)
        await writer.write(piece)
        await writer.commit()
    assert (await backend.stat("f/up")).size == len(data) + 3
    await backend.move("f/up", "f/blob")
    assert b"".join([c async for c in backend.reader("f/blob", chunk_size=MiB)]) == data + b"end"
    assert await backend.list("f") == ["blob", "small"]
    await backend.delete("f")
    assert await backend.list("f") == []


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(lambda n, method: "slowdown" if n % 2 else "pass", id="every-other-request-throttled"),
        pytest.param(lambda n, method: "reset" if n % 3 == 0 else "pass", id="every-third-connection-dropped"),
        pytest.param(lambda n, method: "truncate" if method == "GET" and n % 2 else "pass", id="bodies-cut-short"),
    ],
)
async def test_transient_failures_are_retried(s3: S3Endpoint, plan: Plan) -> None:
    with fault_proxy(s3.url, plan) as (url, proxy):
        backend = backend_through(s3, url)
        try:
            await workload(backend)
        finally:
            await backend.close()
    assert proxy.injected, "the plan injected no failure"


async def test_access_denied_is_a_backend_error(s3: S3Endpoint) -> None:
    with fault_proxy(s3.url, lambda n, method: "deny") as (url, proxy):
        backend = backend_through(s3, url)
        with pytest.raises(BackendError, match="AccessDenied"):
            await backend.put("f/x", b"x")
        await backend.close()
    assert proxy.count == 1  # a refusal is not retried


async def test_an_endpoint_that_stays_down_fails_promptly(s3: S3Endpoint) -> None:
    with fault_proxy(s3.url, lambda n, method: "slowdown") as (url, proxy):
        backend = backend_through(s3, url, maxretries=2)
        began = time.monotonic()
        with pytest.raises(BackendError, match="SlowDown"):
            await backend.get("f/x")
        assert time.monotonic() - began < 30
        await backend.close()
    assert 3 <= proxy.count <= 4  # the first attempt and two retries (botocore may add one)
