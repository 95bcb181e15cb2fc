"""`docker save` archives, both ways: what `docker load` reads and what `docker save` writes.

An archive written here has both layouts Docker 25+ writes, so every Docker loads it:

```
oci-layout  index.json  blobs/sha256/<hex>     an OCI image layout (manifests, configs, layer tars)
manifest.json                                  [{"Config", "RepoTags", "Layers"}], paths into blobs/
repositories                                   {"name": {"tag": "<top layer>"}}, for old loaders
```
Reading takes `manifest.json` (older Dockers write `<id>/layer.tar` and `<id>.json` beside it) and
the OCI manifest from `index.json` when there is one.

The store keeps layers unpacked, not as archives, so `save` tars each layer again (whiteout
devices back to `.wh.` files, the opaque xattr back to `.wh..wh..opq`). The new tar's digest is a
new diff id, so a saved image's config, and with it the image id, differs from the one pulled."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from oci.reference import InvalidReference, Reference
from runtime.images import ImageStore, LocalImage
from runtime.layers import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, LayerError, is_whiteout_device, unpack

__all__ = ["ArchiveError", "Loaded", "load_archive", "save_archive"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_CHUNK = 1 << 20


class ArchiveError(Exception):
    pass


@dataclass(frozen=True)
class Loaded:
    image_id: str
    tags: list[str]


# --- save ------------------------------------------------------------------------------------------------------


def _layer_tar(layer_dir: Path, out: IO[bytes]) -> None:
    """An OCI layer of an overlay-format directory: entries sorted, owners numeric, times kept."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add(path: Path, name: str) -> None:
            st = os.lstat(path)
            if is_whiteout_device(st):
                parent, _, base = name.rpartition("/")
                # The device's own time is when it was unpacked; 0 keeps a re-made layer identical.
                tar.addfile(tarfile.TarInfo(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base))
                return
            if stat.S_ISSOCK(st.st_mode):
                return
            info = tar.gettarinfo(str(path), name)
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):
                    if os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y":
                        marker = tarfile.TarInfo(f"{name}/{OPAQUE_MARKER}")
                        marker.mtime = int(st.st_mtime)
                        tar.addfile(marker)
                for entry in sorted(os.listdir(path)):
                    add(path / entry, f"{name}/{entry}")

        for entry in sorted(os.listdir(layer_dir)):
            add(layer_dir / entry, entry)


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _add_file(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, data)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_file(tar, name, io.BytesIO(data), len(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _blob_name(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _ArchiveWriter:
    """The blobs of one archive, each written once, and the three listings written at the end."""

    def __init__(self, store: ImageStore, tar: tarfile.TarFile, scratch: Path) -> None:
        self.store, self.tar, self.scratch = store, tar, scratch
        self.written: set[str] = set()
        self.layers: dict[str, tuple[str, int]] = {}  # diff id -> (digest, size) of the re-made tar
        self.manifest_json: list[dict[str, Any]] = []
        self.index: list[dict[str, Any]] = []
        self.repositories: dict[str, dict[str, str]] = {}
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")

    def _blob(self, data: bytes) -> str:
        digest = _sha256(data)
        if digest not in self.written:
            self.written.add(digest)
            _add_bytes(self.tar, _blob_name(digest), data)
        return digest

    def _layer(self, diff_id: str, layer_dir: Path) -> tuple[str, int]:
        if diff_id not in self.layers:
            path = self.scratch / "layer.tar"
            with open(path, "wb") as f:
                _layer_tar(layer_dir, f)
            digest, size = _digest_file(path), path.stat().st_size
            if digest not in self.written:
                self.written.add(digest)
                with open(path, "rb") as f:
                    _add_file(self.tar, _blob_name(digest), f, size)
            path.unlink()
            self.layers[diff_id] = (digest, size)
        return self.layers[diff_id]

    def image(self, image: LocalImage, tags: list[str]) -> None:
        layers = [self._layer(d, p) for d, p in zip(image.config["rootfs"]["diff_ids"], image.layer_dirs, strict=True)]
        config = {**image.config, "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]}}
        unchanged = config["rootfs"] == image.config.get("rootfs")
        config_bytes = self.store.get_blob(image.id) if unchanged else _compact(config)
        config_digest = self._blob(config_bytes)
        manifest = _compact({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for d, n in layers],
        })  # fmt: skip
        descriptor: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": self._blob(manifest), "size": len(manifest)}
        self.manifest_json.append(
            {"Config": _blob_name(config_digest), "RepoTags": tags, "Layers": [_blob_name(d) for d, _ in layers]}
        )
        for tag in tags:
            parsed = Reference.parse(tag)
            names = {"io.containerd.image.name": str(parsed), "org.opencontainers.image.ref.name": parsed.tag}
            self.index.append({**descriptor, "annotations": names})
            top = layers[-1][0].partition(":")[2] if layers else ""
            self.repositories.setdefault(tag.rpartition(":")[0], {})[parsed.tag or "latest"] = top
        if not tags:
            self.index.append(descriptor)

    def finish(self) -> None:
        _add_bytes(
            self.tar, "index.json", _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index})
        )
        _add_bytes(self.tar, "manifest.json", _compact(self.manifest_json))
        _add_bytes(self.tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if self.repositories:
            _add_bytes(self.tar, "repositories", _compact(self.repositories))


def save_archive(store: ImageStore, refs: Sequence[str], out: BinaryIO) -> None:
    """Write the images `refs` name (references or ids) as one archive to the stream `out`."""
    images: list[tuple[LocalImage, list[str]]] = []
    for ref in refs:
        image = store.resolve(ref)
        if image is None:
            raise ArchiveError(f"No such image: {ref}")
        tags = []
        with contextlib.suppress(InvalidReference):
            parsed = Reference.parse(ref)
            if parsed.tag and not parsed.digest and not ref.startswith("sha256:"):
                tags.append(parsed.familiar())
        images.append((image, tags))
    scratch = store.tempdir()
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            writer = _ArchiveWriter(store, tar, scratch)
            for image, tags in images:
                writer.image(image, tags)
            writer.finish()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- load ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _extracted(source: BinaryIO, store: ImageStore) -> Iterator[Path]:
    work = store.tempdir()
    try:
        try:
            with tarfile.open(fileobj=source, mode="r|*") as tar:
                tar.extractall(work, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"invalid archive: {exc}") from None
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:
        raise ArchiveError(f"invalid path in archive: {relative}")
    if not path.is_file():
        raise ArchiveError(f"missing from archive: {relative}")
    return path


def _oci_manifests(root: Path) -> dict[str, tuple[str, bytes]]:
    """Config digest -> (manifest digest, manifest bytes), from index.json when present."""
    found: dict[str, tuple[str, bytes]] = {}
    index_path = root / "index.json"
    if not index_path.is_file():
        return found
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, ArchiveError):
        for descriptor in json.loads(index_path.read_text()).get("manifests", []):
            digest = descriptor["digest"]
            body = _inside(root, _blob_name(digest)).read_bytes()
            document = json.loads(body)
            if document.get("mediaType") == OCI_INDEX or "manifests" in document:
                continue
            found[document["config"]["digest"]] = (digest, body)
    return found


def load_archive(store: ImageStore, source: BinaryIO) -> list[Loaded]:
    """Add every image of a `docker save` archive to `store`, tagged as the archive says."""
    loaded: list[Loaded] = []
    with _extracted(source, store) as root:
        try:
            entries = json.loads((root / "manifest.json").read_text())
        except (OSError, ValueError):
            raise ArchiveError("invalid archive: no manifest.json (not written by docker save)") from None
        oci = _oci_manifests(root)
        for entry in entries:
            config_bytes = _inside(root, entry["Config"]).read_bytes()
            config_digest = _sha256(config_bytes)
            config = json.loads(config_bytes)
            diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
            layer_paths = [_inside(root, p) for p in entry.get("Layers", [])]
            if len(layer_paths) != len(diff_ids):
                raise ArchiveError(f"{entry['Config']}: {len(layer_paths)} layers for {len(diff_ids)} diff ids")
            descriptors = []
            with store.pulling():
                for path, diff_id in zip(layer_paths, diff_ids, strict=True):
                    descriptors.append(_load_layer(store, path, diff_id))
                store.put_blob(config_bytes, config_digest)
                if config_digest in oci:
                    manifest_digest, manifest_bytes = oci[config_digest]
                else:
                    manifest = {
                        "schemaVersion": 2,
                        "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                        "layers": descriptors,
                    }
                    manifest_bytes = _compact(manifest)
                    manifest_digest = _sha256(manifest_bytes)
                store.put_blob(manifest_bytes, manifest_digest)
                tags = [str(t) for t in entry.get("RepoTags") or []]
                if not tags:
                    raise ArchiveError(
                        f"image {config_digest} has no tag in the archive; the store keeps images by name"
                    )
                for tag in tags:
                    try:
                        store.tag(tag, manifest_digest)
                    except InvalidReference as exc:
                        raise ArchiveError(str(exc)) from None
            loaded.append(Loaded(config_digest, tags))
    return loaded


def _load_layer(store: ImageStore, path: Path, diff_id: str) -> dict[str, Any]:
    digest = _digest_file(path)
    descriptor: dict[str, Any] = {"mediaType": DOCKER_LAYER, "digest": digest, "size": path.stat().st_size}
    # Unpacked even when the store has the layer: the archive's content must match its diff id.
    staged = store.tempdir()
    (staged / "diff").mkdir()
    try:
        with open(path, "rb") as f:
            result = unpack(f, staged / "diff")
    except LayerError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise ArchiveError(f"layer {diff_id}: {exc}") from None
    if result.diff_id != diff_id:
        shutil.rmtree(staged, ignore_errors=True)
        raise ArchiveError(f"invalid diffID for layer: expected {diff_id}, got {result.diff_id}")
    if store.has_layer(diff_id):
        shutil.rmtree(staged, ignore_errors=True)
    else:
        store.commit_layer(staged, diff_id, result.size)
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":
            descriptor["mediaType"] += ".gzip"
    # Kept as the manifest names it, so `push` can upload the layer; a hard link, as the archive is on the
    # store's disk and another image of it may list the same file.
    if not store.has_blob(digest):
        kept = store.tempdir() / "layer"
        os.link(path, kept)
        store.put_blob_file(kept, digest)
        kept.parent.rmdir()
    return descriptor
