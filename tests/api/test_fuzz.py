"""Property: no request makes the registry answer 5xx, and every 4xx has the spec's JSON error body.

Every route of `registry/routes.py` is fed malformed names, references, digests, upload ids, query
strings, ranges, headers and bodies, next to real ones (an existing repository, tag, digest and
upload session) so that requests also get past validation into the store. Runs on a filesystem
backend in a temporary directory; examples are derandomized so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.app import create_app
from registry.config import load_config
from registry.errors import ErrorCode
from registry.routes import ROUTES, RouteRow
from storage_backends.filesystem import FilesystemBackend
from tests.auth.conftest import auth_config, token_for

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
EXAMPLES_PER_ROUTE = 60
WIRE_CODES = {code.name for code in ErrorCode}


@dataclass
class Seeded:
    """What the fuzzed requests may hit for real."""

    name: str
    tag: str
    manifest: str
    blob: str
    upload: str
    manifest_body: bytes


class Registry:
    """One app and one event loop for all examples: hypothesis calls the test synchronously.

    In `token` mode the registry wants bearer tokens; `self.token` is a valid one for everything
    the fuzz touches, so that some fuzzed requests carry it and reach the handlers."""

    def __init__(self, tmp: Path, mode: str) -> None:
        root = tmp / "data"
        if mode == "token":
            config = auth_config(tmp, "token")
        else:
            env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root), "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
            config = load_config(None, env)
        app = create_app(config, backend=FilesystemBackend(root=root))
        self.runner = asyncio.Runner()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test")
        self.token = ""
        if mode == "token":
            scopes = ["repository:fuzz/app:pull,push,delete", "registry:catalog:*"]
            self.token = self.runner.run(token_for(self.client, "root", *scopes))
            self.client.headers["Authorization"] = f"Bearer {self.token}"
        self.seeded = self.runner.run(self._seed())
        self.client.headers.pop("Authorization", None)

    async def _seed(self) -> Seeded:
        name = "fuzz/app"
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        layer = b"fuzzed layer"
        for data in (config, layer):
            location = (await self.client.post(f"/v2/{name}/blobs/uploads/")).headers["location"]
            await self.client.put(location, params={"digest": _digest(data)}, content=data)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
            }
        ).encode()
        r = await self.client.put(f"/v2/{name}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        upload = (await self.client.post(f"/v2/{name}/blobs/uploads/")).headers["docker-upload-uuid"]
        return Seeded(name, "v1", r.headers["docker-content-digest"], _digest(layer), upload, body)

    def request(
        self, method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        return self.runner.run(self.client.request(method, path, params=tuple(params), headers=headers, content=body))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


def _digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@pytest.fixture(scope="module", params=["none", "token"])
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    served = Registry(tmp_path_factory.mktemp("fuzz"), request.param)
    yield served
    served.close()


# -- strategies ---------------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_NAMEISH = st.text(st.sampled_from("abcXYZ019._-/:@%~ \\\0\u00e9"), min_size=0, max_size=30)
_HEX = st.text(st.sampled_from("0123456789abcdefABCDEFg"), min_size=0, max_size=130)


def _often(value: str) -> st.SearchStrategy[str]:
    """A real value, drawn about as often as all the malformed ones together."""
    return st.one_of(st.just(value), st.just(value))


def _digests(seeded: Seeded) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([seeded.manifest, seeded.blob, _digest(b""), _digest(b"absent"), _digest(b"", "sha512")]),
        st.builds(
            lambda a, h: f"{a}:{h}", st.sampled_from(["sha256", "sha512", "md5", "SHA256", "", "sha256+b64"]), _HEX
        ),
        _NAMEISH,
        _ANY_TEXT,
    )


def _segment(seeded: Seeded, kind: str) -> st.SearchStrategy[str]:
    if kind == "name":
        return st.one_of(
            _often(seeded.name),
            st.sampled_from(["fuzz/absent", "a" * 256, "a/" * 40 + "b", "UPPER/case", "a//b", "a/../b", "-a", "a."]),
            _NAMEISH.filter(bool),
        )
    if kind == "reference":
        return st.one_of(
            _often(seeded.tag),
            st.sampled_from([".INVALID_MANIFEST_NAME", "t" * 129, "latest", "_x"]),
            _digests(seeded),
            _NAMEISH.filter(bool),
        )
    if kind == "digest":
        return _digests(seeded).filter(bool)
    assert kind == "upload_id"
    return st.one_of(
        st.just(seeded.upload),
        st.sampled_from(["0" * 36, "00000000-0000-0000-0000-000000000000", "x" * 37]),
        st.text(st.sampled_from("0123456789abcdef-./\0 %"), min_size=1, max_size=40),
    )


def _path(row: RouteRow, seeded: Seeded) -> st.SearchStrategy[str]:
    parts = {kind: _segment(seeded, kind) for kind in ("name", "reference", "digest", "upload_id")}

    def render(values: dict[str, str]) -> str:
        path = row.path
        for kind, value in values.items():
            # Slashes in a name are the name's; everything else arrives percent-encoded, decoded by the server.
            path = path.replace("{" + kind + "}", quote(value, safe="/" if kind == "name" else ""))
        return path

    return st.fixed_dictionaries({k: v for k, v in parts.items() if "{" + k + "}" in row.path}).map(render)


_QUERY_KEYS = ["digest", "mount", "from", "tag", "n", "last", "artifactType", "digest-algorithm", "x"]


def _query(seeded: Seeded) -> st.SearchStrategy[list[tuple[str, str]]]:
    value = st.one_of(
        _digests(seeded),
        st.sampled_from([seeded.name, seeded.tag, "-1", "0", "1", "99999999999999999999", "sha512", "nope"]),
        _ANY_TEXT,
    )
    return st.lists(st.tuples(st.sampled_from(_QUERY_KEYS), value), max_size=4)


_RANGE = st.one_of(
    st.sampled_from(["bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-2", "bytes=999999-", "bytes=0-1,3-4"]),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(-5, 2**70), st.integers(-5, 2**70)),
    st.text(st.sampled_from("bytes=-0123456789, /*"), max_size=20),
)
_CONTENT_RANGE = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", st.integers(-3, 2**66), st.integers(-3, 2**66)),
    st.sampled_from(["0-0", "bytes 0-3/4", "bytes */4", "4-0", "0-3/*"]),
    st.text(st.sampled_from("bytes=-0123456789, /*"), max_size=20),
)
_HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def _headers(token: str) -> st.SearchStrategy[dict[str, str]]:
    malformed = st.one_of(
        st.sampled_from(["Basic !!!", "Bearer x.y.z", "Basic", "Digest a=b", f"Bearer {token[:-2]}"]),
        _HEADER_VALUE,
    )
    # With a token to give, most requests carry it, so that they get past authorization.
    required = {"Authorization": st.one_of(_often(f"Bearer {token}"), malformed)} if token else {}
    optional = {} if token else {"Authorization": malformed}
    content_type = st.one_of(
        st.sampled_from([OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v1+json", "text/plain"]),
        _HEADER_VALUE,
    )
    return st.fixed_dictionaries(
        required,
        optional={
            **optional,
            "Range": _RANGE,
            "Content-Range": _CONTENT_RANGE,
            "Content-Type": content_type,
            "Accept": _HEADER_VALUE,
            "X-Request-Id": _HEADER_VALUE,
            # Lengths that disagree with the body, or are no length at all.
            "Content-Length": st.one_of(st.integers(-2, 2**64).map(str), st.sampled_from(["", "abc", "1e3", " 5"])),
            "Transfer-Encoding": st.sampled_from(["chunked", "gzip", "identity"]),
            "If-None-Match": _HEADER_VALUE,
        },
    )


def _body(seeded: Seeded) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(b""),
        st.just(seeded.manifest_body),
        st.binary(max_size=64),
        st.sampled_from([b"{}", b"[]", b"null", b'{"schemaVersion":2}', b'{"schemaVersion":2,"layers":{}}']),
        st.builds(lambda m: seeded.manifest_body.replace(b"sha256:", m), st.sampled_from([b"sha256:zz", b"md5:", b""])),
    )


# -- the property -------------------------------------------------------------------------------

CASES = [(row, method) for row in ROUTES for method in row.methods]


@pytest.mark.parametrize(("row", "method"), CASES, ids=[f"{m} {r.path}" for r, m in CASES])
def test_no_request_is_a_5xx_and_every_4xx_has_the_json_error_body(
    registry: Registry, row: RouteRow, method: str
) -> None:
    seeded = registry.seeded

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(
        path=_path(row, seeded),
        params=_query(seeded),
        headers=_headers(registry.token),
        body=_body(seeded),
    )
    def check(path: str, params: list[tuple[str, str]], headers: dict[str, str], body: bytes) -> None:
        r = registry.request(method, path, params, headers, body)
        assert r.status_code < 500, (method, path, params, headers, r.status_code, r.text)
        assert r.headers["docker-distribution-api-version"] == "registry/2.0"
        if r.status_code >= 400 and method != "HEAD":
            assert r.headers["content-type"] == "application/json", (method, path, r.headers)
            errors = r.json()["errors"]
            assert isinstance(errors, list) and errors, (method, path, r.text)
            for error in errors:
                assert error["code"] in WIRE_CODES and isinstance(error["message"], str) and error["message"]

    check()
