"""The local image store without a registry: resolving, listing, inspecting, removing and pruning."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import runtime.images
from runtime.images import ImageError, ImageInUse, ImageNotFound, ImageStore
from runtime.layers import unpack
from tests.imagebuild import ImageSpec, Layer, build_image, file, layer


def _add(store: ImageStore, refs: list[str], layers: list[Layer], created_by: str = "x") -> str:
    """Put an image into the store as a pull would: layers unpacked, blobs written, refs tagged."""
    image = build_image(ImageSpec(layers, config={"Cmd": ["/bin/" + created_by]}))
    for la in layers:
        if store.has_layer(la.diff_id):
            continue
        staged = store.tempdir()
        (staged / "diff").mkdir()
        result = unpack(io.BytesIO(la.blob), staged / "diff")
        store.commit_layer(staged, la.diff_id, result.size)
    store.put_blob(image.config, image.id)
    store.put_blob(image.manifest, image.manifest_digest)
    for ref in refs:
        store.tag(ref, image.manifest_digest)
    return image.id


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "root")


BASE = layer([file("bin/base", b"base" * 100)])
TOP_A = layer([file("etc/a", b"a")])
TOP_B = layer([file("etc/b", b"bb")])


def test_resolve_by_reference_id_and_prefix(store: ImageStore) -> None:
    image_id = _add(store, ["127.0.0.1:5000/demo/a:v1"], [BASE, TOP_A])
    by_ref = store.resolve("127.0.0.1:5000/demo/a:v1")
    assert by_ref is not None
    assert by_ref.id == image_id
    assert by_ref.reference == "127.0.0.1:5000/demo/a:v1"
    assert [p.name for p in by_ref.layer_dirs] == ["diff", "diff"]
    assert (by_ref.layer_dirs[0] / "bin/base").read_bytes() == b"base" * 100
    assert (by_ref.layer_dirs[1] / "etc/a").exists()
    hexid = image_id.partition(":")[2]
    for text in (image_id, hexid, hexid[:12], f"sha256:{hexid[:8]}"):
        found = store.resolve(text)
        assert found is not None and found.id == image_id, text
    manifest = store.resolve(f"127.0.0.1:5000/demo/a@{by_ref.manifest_digest}")
    assert manifest is not None and manifest.id == image_id
    assert store.resolve("127.0.0.1:5000/demo/a:v2") is None
    assert store.resolve("busybox") is None
    assert store.resolve("not a reference!") is None


def test_short_name_resolves_with_docker_defaults(store: ImageStore) -> None:
    _add(store, ["docker.io/library/busybox:latest"], [BASE])
    assert store.resolve("busybox") is not None
    assert store.resolve("docker.io/library/busybox") is not None


def test_ambiguous_id_prefix(store: ImageStore) -> None:
    ids = {_add(store, [f"h:1/r{n}:t"], [BASE], created_by=str(n)) for n in range(40)}
    shared = {i[7] for i in ids}
    assert len(shared) < 40  # 40 ids over 16 hex digits: some share their first digit
    digit = next(d for d in shared if sum(i[7] == d for i in ids) > 1)
    with pytest.raises(ImageError, match="ambiguous"):
        store.resolve(digit)


def test_layers_shared_between_images(store: ImageStore) -> None:
    _add(store, ["h:1/a:v1"], [BASE, TOP_A])
    _add(store, ["h:1/b:v1"], [BASE, TOP_B])
    a, b = store.resolve("h:1/a:v1"), store.resolve("h:1/b:v1")
    assert a is not None and b is not None
    assert a.layer_dirs[0] == b.layer_dirs[0]
    assert len(list((store.base / "layers" / "sha256").iterdir())) == 3


def test_list_and_inspect(store: ImageStore) -> None:
    image_id = _add(store, ["h:1/a:v1", "h:1/a:latest"], [BASE, TOP_A])
    assert [i.reference for i in store.list()] == ["h:1/a:latest", "h:1/a:v1"]
    data = store.inspect("h:1/a:v1")
    assert data["Id"] == image_id
    assert data["RepoTags"] == ["h:1/a:latest", "h:1/a:v1"]
    assert data["RepoDigests"] == [f"h:1/a@{data['ManifestDigest']}"]
    assert data["RootFS"]["Layers"] == [BASE.diff_id, TOP_A.diff_id]
    assert data["Config"]["Cmd"] == ["/bin/x"]
    assert data["Os"] == "linux" and data["Architecture"] == "amd64"
    assert data["Size"] == 401
    json.dumps(data)
    with pytest.raises(ImageNotFound):
        store.inspect("h:1/none:v1")


def test_remove_by_tag_keeps_shared_layers(store: ImageStore) -> None:
    a_id = _add(store, ["h:1/a:v1"], [BASE, TOP_A])
    _add(store, ["h:1/b:v1"], [BASE, TOP_B])
    result = store.remove("h:1/a:v1")
    assert result.untagged == ["h:1/a:v1"]
    assert a_id in result.deleted and TOP_A.diff_id in result.deleted
    assert BASE.diff_id not in result.deleted
    assert store.has_layer(BASE.diff_id) and not store.has_layer(TOP_A.diff_id)
    b = store.resolve("h:1/b:v1")
    assert b is not None and all(p.is_dir() for p in b.layer_dirs)


def test_remove_one_of_two_tags_deletes_nothing(store: ImageStore) -> None:
    _add(store, ["h:1/a:v1", "h:1/a:v2"], [BASE])
    result = store.remove("h:1/a:v1")
    assert result.untagged == ["h:1/a:v1"] and result.deleted == []
    assert store.resolve("h:1/a:v2") is not None


def test_remove_by_id_with_several_repositories_needs_force(store: ImageStore) -> None:
    image_id = _add(store, ["h:1/a:v1", "h:1/b:v1"], [BASE])
    with pytest.raises(ImageError, match="multiple repositories"):
        store.remove(image_id)
    result = store.remove(image_id, force=True)
    assert sorted(result.untagged) == ["h:1/a:v1", "h:1/b:v1"]
    assert store.list() == []
    assert not store.has_layer(BASE.diff_id)


def test_remove_refuses_image_in_use(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    image_id = _add(store, ["h:1/a:v1"], [BASE])
    monkeypatch.setattr(runtime.images, "images_in_use", lambda root: {image_id})
    with pytest.raises(ImageInUse, match=r'repository reference "h:1/a:v1" \(must force\) - a container is using'):
        store.remove("h:1/a:v1")
    result = store.remove("h:1/a:v1", force=True)
    assert result.untagged == ["h:1/a:v1"] and result.deleted == []
    # Untagged but still in use: the container's layers stay, even through a prune.
    assert store.prune().deleted == []
    assert store.has_layer(BASE.diff_id)
    monkeypatch.setattr(runtime.images, "images_in_use", lambda root: set())
    expected = sorted([image_id, BASE.diff_id, *_manifests(store)])
    assert sorted(store.prune().deleted) == expected


def _manifests(store: ImageStore) -> list[str]:
    blobs = (store.base / "blobs" / "sha256").iterdir()
    return [f"sha256:{p.name}" for p in blobs if b'"schemaVersion"' in p.read_bytes()]


def test_prune_removes_dangling_and_leftovers(store: ImageStore) -> None:
    _add(store, ["h:1/a:v1"], [BASE, TOP_A])
    _add(store, ["h:1/a:v1"], [BASE, TOP_B])  # the tag moves: the first image is dangling
    leftover = store.tempdir()
    (leftover / "partial").write_bytes(b"x")
    result = store.prune()
    assert TOP_A.diff_id in result.deleted and BASE.diff_id not in result.deleted
    assert result.reclaimed > 0
    assert list((store.base / "tmp").iterdir()) == []
    assert store.resolve("h:1/a:v1") is not None
    assert store.prune().deleted == []


def test_put_blob_checks_digest(store: ImageStore) -> None:
    with pytest.raises(ImageError, match="digest mismatch"):
        store.put_blob(b"data", "sha256:" + "0" * 64)


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKYARD_RUNTIME_ROOT", raising=False)
    assert runtime.images.default_root() == Path("/var/lib/dockyard-runtime")
    monkeypatch.setenv("DOCKYARD_RUNTIME_ROOT", str(tmp_path))
    assert runtime.images.default_root() == tmp_path


def test_removing_one_of_two_tags_only_untags_even_when_in_use(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = _add(store, ["h:1/a:v1", "h:1/a:v2"], [BASE])
    monkeypatch.setattr(runtime.images, "images_in_use", lambda root: {image_id})
    result = store.remove("h:1/a:v2")
    assert result.untagged == ["h:1/a:v2"] and result.deleted == []
    assert [i.reference for i in store.list()] == ["h:1/a:v1"]
    # The last tag of an image a container uses needs -f, as with Docker.
    with pytest.raises(ImageInUse):
        store.remove("h:1/a:v1")
