"""Quotas against real servers: refused at the upload that would exceed, before bytes are stored;
blobs the namespace holds cost nothing; usage in `dockyard quota` and the metrics, right across two
replicas on one store and after GC."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.policies.common import blob, digest_of, dockyard, image
from tests.servers import running_registry, wait_for

V2 = "docker/registry/v2"
CONFIG = "quotas:\n  limits:\n    - namespace: team\n      maxsize: 1000\n"


def _blob_stored(data_root: Path, data: bytes) -> bool:
    return (data_root / V2 / "blobs/sha256" / digest_of(data)[7:9] / digest_of(data)[7:] / "data").exists()


def _upload_sizes(data_root: Path, name: str) -> list[int]:
    """The bytes each upload session of `name` holds in the store."""
    uploads = data_root / V2 / "repositories" / name / "_uploads"
    return sorted(p.stat().st_size for p in uploads.glob("*/data")) if uploads.exists() else []


def _denied(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED" and "quota exceeded" in error["message"], error


def _gauge(client: httpx.Client, quota: str) -> int:
    text = client.get("/metrics").text
    match = re.search(rf'^dockyard_quota_used_bytes\{{quota="{re.escape(quota)}"\}} (\S+)$', text, re.M)
    assert match is not None, text
    return int(float(match.group(1)))


def test_refused_before_stored_and_held_blobs_cost_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    held, big, other = b"x" * 600, b"y" * 600, b"z" * 300
    with running_registry(data, config=config) as server, httpx.Client(base_url=server.url) as client:
        assert blob(client, "team/a", held).status_code == 201
        # monolithic POST that would exceed: refused, nothing of it in the store
        _denied(blob(client, "team/b", big))
        assert not _blob_stored(data, big) and _upload_sizes(data, "team/b") == []
        # a PATCH whose Content-Length would exceed, and that is larger than any blob the namespace
        # holds (so it cannot be one of them): refused before its bytes are written
        location = client.post("/v2/team/c/blobs/uploads/").headers["location"]
        _denied(client.patch(location, content=big + b"y"))
        assert _upload_sizes(data, "team/c") == [0]
        # streamed without a length: refused once the bytes so far exceed, the chunk rolled back
        stream = client.post("/v2/team/c/blobs/uploads/").headers["location"]
        _denied(client.patch(stream, content=iter([b"y" * 100] * 7)))
        assert _upload_sizes(data, "team/c") == [0, 0]
        # at finalize: fitted when its chunk came, but another upload took the room since
        late = client.post("/v2/team/d/blobs/uploads/").headers["location"]
        assert client.patch(late, content=other).status_code == 202
        assert blob(client, "team/e", other[:-1] + b"w").status_code == 201  # 600 + 300 used now
        _denied(client.put(late, params={"digest": digest_of(other)}))
        assert not _blob_stored(data, other) and _upload_sizes(data, "team/d") == []
        # the namespace holds this blob: a monolithic POST, a completing PUT with the bytes and a
        # mount cost nothing, however full the quota is (chunked uploads: test_chunked_upload_of_a_held_blob)
        assert blob(client, "team/b", held).status_code == 201
        put = client.post("/v2/team/f/blobs/uploads/").headers["location"]
        assert client.put(put, params={"digest": digest_of(held)}, content=held).status_code == 201
        mount = client.post("/v2/team/h/blobs/uploads/", params={"mount": digest_of(held), "from": "team/a"})
        assert mount.status_code == 201
        assert client.head(f"/v2/team/b/blobs/{digest_of(held)}").status_code == 200
        # claiming a held digest buys no room: more bytes than that blob are refused, other bytes
        # of its size fail the digest check, and neither is left in the store
        _denied(blob(client, "team/i", b"v" * 700, digest=digest_of(held)))
        liar = blob(client, "team/i", b"v" * 600, digest=digest_of(held))
        assert liar.status_code == 400 and liar.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert not _blob_stored(data, b"v" * 600) and _upload_sizes(data, "team/i") == []
        # other namespaces are not limited
        assert blob(client, "other/x", big).status_code == 201
        assert _gauge(client, "ns:team") == 900
    table = dockyard("quota", str(config), env={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)}).stdout
    assert re.search(r"^ns:team\s+900\s+1000\s+90\.0%$", table, re.M), table
    rows = dockyard("quota", "--json", str(config), env={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)})
    assert json.loads(rows.stdout) == [{"quota": "ns:team", "usedbytes": 900, "maxbytes": 1000}]


def _chunked(client: httpx.Client, name: str, data: bytes, how: str) -> httpx.Response:
    """A chunked upload (POST, PATCH..., PUT ?digest=): `ranges` sends two chunks with
    Content-Range, `stream` one PATCH without a length, `last` the second half with the PUT."""
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    half = len(data) // 2
    tail = b""
    if how == "ranges":
        for start, chunk in ((0, data[:half]), (half, data[half:])):
            headers = {"Content-Range": f"{start}-{start + len(chunk) - 1}"}
            patched = client.patch(location, content=chunk, headers=headers)
            if patched.status_code != 202:
                return patched
            location = patched.headers["location"]
    elif how == "stream":
        patched = client.patch(location, content=iter([data[:half], data[half:]]))
        if patched.status_code != 202:
            return patched
        location = patched.headers["location"]
    else:
        patched = client.patch(location, content=data[:half])
        if patched.status_code != 202:
            return patched
        location, tail = patched.headers["location"], data[half:]
    return client.put(location, params={"digest": digest_of(data)}, content=tail)


def test_chunked_upload_of_a_held_blob(tmp_path: Path) -> None:
    """A layer the namespace holds, pushed in chunks to another repository (as docker, skopeo and
    containerd push when they do not know where to mount it from), is not refused for its length
    and counts once; chunks that are not a held blob are refused at the PUT, leaving nothing."""
    config = tmp_path / "c.yml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)}
    held, small = b"x" * 600, b"s" * 100
    with running_registry(data, config=config) as server, httpx.Client(base_url=server.url) as client:
        assert blob(client, "team/a", held).status_code == 201
        assert blob(client, "team/a", small).status_code == 201  # 700 of 1000 used
        for repository, how in (("team/b", "ranges"), ("team/c", "stream"), ("team/d", "last")):
            pushed = _chunked(client, repository, held, how)
            assert pushed.status_code == 201, (how, pushed.text)
            assert client.head(f"/v2/{repository}/blobs/{digest_of(held)}").status_code == 200
            assert _upload_sizes(data, repository) == []
        assert _gauge(client, "ns:team") == 700  # a shared blob counts once per namespace
        # the same length, other bytes: let in while they could be the held blob, refused at the PUT
        for repository, how in (("team/e", "ranges"), ("team/f", "stream"), ("team/g", "last")):
            _denied(_chunked(client, repository, b"o" * 600, how))
            assert _upload_sizes(data, repository) == []
        assert not _blob_stored(data, b"o" * 600)
        # a chunked upload that fits is not held back, whatever it is
        assert _chunked(client, "team/h", b"n" * 300, "ranges").status_code == 201
        assert _gauge(client, "ns:team") == 1000
    rows = dockyard("quota", "--json", str(config), env=env)
    assert json.loads(rows.stdout) == [{"quota": "ns:team", "usedbytes": 1000, "maxbytes": 1000}]


@contextlib.contextmanager
def _two_replicas(tmp_path: Path, config: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        running_registry(tmp_path / "data", config=config) as one,
        running_registry(tmp_path / "data", config=config) as two,
    ):
        with httpx.Client(base_url=one.url) as a, httpx.Client(base_url=two.url) as b:
            yield a, b


def test_usage_across_two_replicas_and_after_gc(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(CONFIG.replace("1000", "2000"))
    data = tmp_path / "data"
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)}
    with _two_replicas(tmp_path, config) as (a, b):
        first = image(b, "team/one", "v1", b"1" * 700)  # replica B learns the usage first
        assert first.response.status_code == 201
        second = image(a, "team/two", "v1", b"2" * 700)  # config blob shared: counted once
        assert second.response.status_code == 201
        used = 2 + 700 + len(first.manifest) + 700 + len(second.manifest)
        assert _gauge(a, "ns:team") == used
        # B committed nothing since A's push, yet refuses what would exceed with A's blobs counted
        wait_for(lambda: _gauge(b, "ns:team") == used, what="replica B's usage")
        _denied(blob(b, "team/one", b"3" * (2000 - used + 1)))
        # GC frees the untagged image's blobs: both replicas and `dockyard quota` see the room
        assert b.delete(f"/v2/team/two/manifests/{second.digest}").status_code == 202
        report = json.loads(dockyard("gc", "--json", "--grace-period", "0s", str(config), env=env).stdout)
        assert report["bytes_freed"] == 700 + len(second.manifest)
        rows = json.loads(dockyard("quota", "--json", str(config), env=env).stdout)
        assert rows == [{"quota": "ns:team", "usedbytes": 2 + 700 + len(first.manifest), "maxbytes": 2000}]
        for replica in (a, b):
            wait_for(lambda r=replica: _gauge(r, "ns:team") == rows[0]["usedbytes"], what="usage after GC")
        assert blob(a, "team/one", b"3" * (2000 - used + 1)).status_code == 201


def test_repository_glob_quota_and_mounts(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        'quotas:\n  limits:\n    - repositories: "proj/app*"\n      maxsize: 500\n'
        "    - namespace: proj\n      maxsize: 800\n"
    )
    data = tmp_path / "data"
    shared, big = b"s" * 300, b"b" * 300
    with running_registry(data, config=config) as server, httpx.Client(base_url=server.url) as client:
        assert blob(client, "proj/app1", shared).status_code == 201
        assert blob(client, "proj/app2", shared).status_code == 201  # shared within the glob: counted once
        _denied(blob(client, "proj/app2", big))  # 300 + 300 > 500
        assert blob(client, "proj/tools", big).status_code == 201  # outside the glob, inside the namespace
        _denied(blob(client, "proj/tools", b"t" * 201))  # the namespace's 800: 600 + 201
        # a mount adds a blob like an upload does: refused where it would exceed
        assert blob(client, "else/where", b"m" * 250).status_code == 201
        mounted = client.post(
            "/v2/proj/app3/blobs/uploads/", params={"mount": digest_of(b"m" * 250), "from": "else/where"}
        )
        _denied(mounted)
        assert client.head(f"/v2/proj/app3/blobs/{digest_of(b'm' * 250)}").status_code == 404
        assert _gauge(client, "glob:proj/app*") == 300 and _gauge(client, "ns:proj") == 600
    rows = dockyard("quota", "--json", str(config), env={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(data)})
    assert json.loads(rows.stdout) == [
        {"quota": "glob:proj/app*", "usedbytes": 300, "maxbytes": 500},
        {"quota": "ns:proj", "usedbytes": 600, "maxbytes": 800},
    ]
