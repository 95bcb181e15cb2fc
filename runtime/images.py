"""The local image store: content-addressed blobs, layers unpacked once by diff id, and references.

```
<root>/images/
    blobs/<alg>/<hex>            manifests, indexes, configs and compressed layers, named by their digest
    layers/<alg>/<hex>/diff/     one layer unpacked in overlayfs format, named by its diff id
    layers/<alg>/<hex>/size      bytes the unpacked layer takes
    repositories.json            {"refs": {"host/name:tag": {"manifest": digest, "index": digest|null}}}
    buildcache/<hex>.json        `dockyard build`'s cache records; each lists the "diff_ids" and "blobs" it needs
    tmp/                         work space; everything is built here and renamed into place
    lock                         flock: pulls hold it shared, garbage collection exclusive
```
Layers are kept twice: unpacked under layers/ for containers, and as the compressed archive the manifest
names under blobs/ (pulled, loaded or built alike), so `push` can upload them to any registry. A blob lives
as long as a manifest of a tagged image (or a build cache record) names it; `rmi` and `prune` remove it.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci.digest import Digest, InvalidDigest
from oci.reference import InvalidReference, Reference
from runtime.atomicfile import write_atomic

DEFAULT_ROOT = Path("/var/lib/dockyard-runtime")
ROOT_ENV = "DOCKYARD_RUNTIME_ROOT"
_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")


class ImageError(Exception):
    pass


class ImageNotFound(ImageError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")
        self.ref = ref


class ImageInUse(ImageError):
    pass


@dataclass(frozen=True)
class LocalImage:
    id: str
    reference: str
    manifest_digest: str
    config: dict[str, Any]
    layer_dirs: list[Path]

    @property
    def short_id(self) -> str:
        return self.id.partition(":")[2][:12]


@dataclass
class RemoveResult:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class PruneResult:
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def images_in_use(root: Path) -> set[str]:
    """Image ids (or references) that containers use; empty while the container half is not installed."""
    try:
        from runtime.containers import images_in_use as in_use  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return set()
    result: set[str] = set(in_use(root))
    return result


def _container_using(root: Path, image_id: str) -> str:
    """`container <short id>` of one container made from the image, for Docker's conflict message."""
    try:
        from runtime.containers import ContainerStore
    except ImportError:
        return "a container"
    user = next((c for c in ContainerStore(root).list() if c.spec.image_id == image_id), None)
    return f"container {user.id[:12]}" if user is not None else "a container"


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / "images"

    # --- paths -----------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        d = Digest.parse(digest)
        return self.base / "blobs" / d.algorithm / d.encoded

    def layer_path(self, diff_id: str) -> Path:
        d = Digest.parse(diff_id)
        return self.base / "layers" / d.algorithm / d.encoded

    def layer_dir(self, diff_id: str) -> Path:
        return self.layer_path(diff_id) / "diff"

    def has_layer(self, diff_id: str) -> bool:
        return (self.layer_path(diff_id) / "size").is_file()

    def layer_size(self, diff_id: str) -> int:
        try:
            return int((self.layer_path(diff_id) / "size").read_text())
        except (OSError, ValueError):
            return 0

    # --- writing ---------------------------------------------------------------------------------------------

    def ensure_dirs(self) -> None:
        for sub in ("blobs", "layers", "tmp"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o711)

    def tempdir(self) -> Path:
        """A fresh directory on the store's filesystem, so a finished result can be renamed into place."""
        self.ensure_dirs()
        import tempfile  # only a pull or a load writes: not loaded to start a container

        return Path(tempfile.mkdtemp(dir=self.base / "tmp"))

    def put_blob(self, data: bytes, digest: str) -> None:
        expected = Digest.parse(digest)
        actual = Digest.of(data, expected.algorithm)
        if actual != expected:
            raise ImageError(f"digest mismatch: expected {expected}, got {actual}")
        path = self.blob_path(digest)
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def get_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob_file(self, path: Path, digest: str) -> None:
        """Move the file `path`, whose content the caller has digested as `digest`, into the store."""
        target = self.blob_path(digest)
        if target.is_file():
            path.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)

    @property
    def build_cache_dir(self) -> Path:
        return self.base / "buildcache"

    def prune_build_cache(self) -> int:
        """Forget every build cache record (`builder prune`); what only they used goes at the next prune."""
        removed = 0
        if self.build_cache_dir.is_dir():
            for record in self.build_cache_dir.iterdir():
                record.unlink(missing_ok=True)
                removed += 1
        return removed

    def commit_layer(self, staged: Path, diff_id: str, size: int) -> None:
        """Move a layer unpacked at `staged/diff` into the store. A layer another pull committed first wins."""
        (staged / "size").write_text(str(size))
        target = self.layer_path(diff_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, target)
        except OSError:
            if not self.has_layer(diff_id):
                raise
            _remove_tree(staged)

    def tag(self, ref: str, manifest_digest: str, index_digest: str | None = None) -> None:
        with self._refs_update() as refs:
            refs[str(Reference.parse(ref))] = {"manifest": manifest_digest, "index": index_digest}

    @contextlib.contextmanager
    def pulling(self) -> Iterator[None]:
        """Held while a pull writes: garbage collection waits for it, other pulls do not."""
        with self._flock("lock", fcntl.LOCK_SH):
            yield

    # --- reading ---------------------------------------------------------------------------------------------

    def refs(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.base / "repositories.json").read_text())
        except FileNotFoundError:
            return {}
        refs: dict[str, dict[str, Any]] = data.get("refs", {})
        return refs

    def load(self, manifest_digest: str, reference: str) -> LocalImage:
        manifest = json.loads(self.get_blob(manifest_digest))
        config_digest = manifest["config"]["digest"]
        config = json.loads(self.get_blob(config_digest))
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        return LocalImage(
            id=config_digest,
            reference=reference,
            manifest_digest=manifest_digest,
            config=config,
            layer_dirs=[self.layer_dir(d) for d in diff_ids],
        )

    def resolve(self, ref: str) -> LocalImage | None:
        refs = self.refs()
        parsed = _parse(ref)
        if parsed is not None:
            record = refs.get(str(parsed))
            if record is not None:
                return self._load_or_none(record["manifest"], str(parsed))
            if parsed.digest is not None:
                for key, record in sorted(refs.items()):
                    other = _parse(key)
                    if other and other.name == parsed.name and parsed.digest in (record["manifest"], record["index"]):
                        return self._load_or_none(record["manifest"], str(parsed))
        match = _ID_PREFIX_RE.match(ref)
        if match is None:
            return None
        prefix = match.group(1)
        found: dict[str, LocalImage] = {}
        for image in self.list():
            hexid = image.id.partition(":")[2]
            if hexid.startswith(prefix):
                found.setdefault(image.id, image)
        if len(found) > 1:
            raise ImageError(f"image id prefix {prefix!r} is ambiguous: {', '.join(sorted(found))}")
        return next(iter(found.values()), None)

    def list(self) -> builtins.list[LocalImage]:
        images = []
        for key, record in sorted(self.refs().items()):
            image = self._load_or_none(record["manifest"], key)
            if image is not None:
                images.append(image)
        return images

    def size(self, image: LocalImage) -> int:
        diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])
        return sum(self.layer_size(d) for d in diff_ids)

    def references_to(self, image_id: str) -> builtins.list[str]:
        return [image.reference for image in self.list() if image.id == image_id]

    def inspect(self, ref: str) -> dict[str, Any]:
        """`docker image inspect`'s fields for one image."""
        image = self.resolve(ref)
        if image is None:
            raise ImageNotFound(ref)
        refs = self.refs()
        tags, digests = [], set()
        for key, record in sorted(refs.items()):
            parsed = _parse(key)
            if parsed is None or record["manifest"] != image.manifest_digest:
                continue
            if parsed.tag:
                tags.append(str(parsed.with_digest(None)))
            digests.add(f"{parsed.name}@{record['index'] or record['manifest']}")
        config = image.config
        return {
            "Id": image.id,
            "RepoTags": tags,
            "RepoDigests": sorted(digests),
            "Parent": "",
            "Comment": _last_comment(config),
            "Created": config.get("created", ""),
            "Author": config.get("author", ""),
            "Config": config.get("config", {}),
            "Architecture": config.get("architecture", ""),
            "Variant": config.get("variant", ""),
            "Os": config.get("os", ""),
            "Size": self.size(image),
            "ManifestDigest": image.manifest_digest,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {"LowerDir": ":".join(str(p) for p in reversed(image.layer_dirs))},
            },
            "RootFS": {"Type": "layers", "Layers": list(config.get("rootfs", {}).get("diff_ids", []))},
        }

    # --- removing --------------------------------------------------------------------------------------------

    def remove(self, ref: str, force: bool = False) -> RemoveResult:
        """`docker rmi`: untag `ref` (every tag, when it is an id), then delete what no image uses any more."""
        image = self.resolve(ref)
        if image is None:
            raise ImageNotFound(ref)
        parsed = _parse(ref)
        by_reference = parsed is not None and str(parsed) in self.refs()
        in_use = images_in_use(self.root)
        used = image.id in in_use or any(r in in_use for r in self.references_to(image.id))
        # Docker's rule: removing one of several tags only untags, even when a container uses the image.
        other_tags = [r for r in self.references_to(image.id) if r != str(parsed) and _tag_of(r)]
        if used and not force and not (by_reference and parsed is not None and parsed.tag and other_tags):
            user = _container_using(self.root, image.id)
            if by_reference:
                raise ImageInUse(
                    f'conflict: unable to remove repository reference "{ref}" (must force) - '
                    f"{user} is using its referenced image {image.short_id}"
                )
            raise ImageInUse(
                f"conflict: unable to delete {image.short_id} (must be forced) - image is being used by {user}"
            )
        result = RemoveResult()
        with self._refs_update() as refs:
            if by_reference:
                assert parsed is not None
                victims = [str(parsed)]
            else:
                victims = [k for k, r in refs.items() if self._config_of(r["manifest"]) == image.id]
                if len(victims) > 1 and not force:
                    raise ImageError(
                        f"conflict: unable to delete {image.short_id} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
            for key in victims:
                refs.pop(key, None)
                result.untagged.append(key)
        still_tagged = any(self._config_of(r["manifest"]) == image.id for r in self.refs().values())
        if not still_tagged and not used:
            result.deleted = self.prune().deleted
        return result

    def prune(self) -> PruneResult:
        """Delete blobs and unpacked layers that no tagged image and no container's image needs."""
        in_use = images_in_use(self.root)
        result = PruneResult()
        if not self.base.is_dir():
            return result
        with self._flock("lock", fcntl.LOCK_EX):
            refs = self.refs()
            keep_blobs: set[str] = set()
            manifests = {r["manifest"] for r in refs.values()}
            keep_blobs |= {r["index"] for r in refs.values() if r.get("index")}
            for digest, doc in self._stored_manifests():
                if doc.get("config", {}).get("digest") in in_use:
                    manifests.add(digest)
            keep_layers: set[str] = set()
            for digest in manifests:
                try:
                    image = self.load(digest, digest)
                    layer_digests = {str(d["digest"]) for d in json.loads(self.get_blob(digest)).get("layers", [])}
                except (OSError, ValueError, KeyError, TypeError, InvalidDigest):
                    continue
                keep_blobs |= {digest, image.id} | layer_digests
                keep_layers |= set(image.config.get("rootfs", {}).get("diff_ids", []))
            for needs in self._build_cache_needs():
                keep_layers |= set(needs.get("diff_ids", []))
                keep_blobs |= set(needs.get("blobs", []))
            for path, digest in self._walk("blobs"):
                if digest not in keep_blobs:
                    result.reclaimed += path.stat().st_size
                    path.unlink()
                    result.deleted.append(digest)
            for path, digest in self._walk("layers"):
                if digest not in keep_layers:
                    result.reclaimed += self.layer_size(digest)
                    _remove_tree(path)
                    result.deleted.append(digest)
            tmp = self.base / "tmp"
            if tmp.is_dir():
                for leftover in tmp.iterdir():
                    _remove_tree(leftover)
        return result

    # --- internals -------------------------------------------------------------------------------------------

    def _load_or_none(self, manifest_digest: str, reference: str) -> LocalImage | None:
        try:
            return self.load(manifest_digest, reference)
        except (OSError, ValueError, KeyError, InvalidDigest):
            return None

    def _config_of(self, manifest_digest: str) -> str | None:
        try:
            digest: str = json.loads(self.get_blob(manifest_digest))["config"]["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return digest

    def _build_cache_needs(self) -> Iterator[dict[str, Any]]:
        if not self.build_cache_dir.is_dir():
            return
        for record in self.build_cache_dir.iterdir():
            try:
                doc = json.loads(record.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                yield doc

    def _stored_manifests(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path, digest in self._walk("blobs"):
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("config"), dict) and "layers" in doc:
                yield digest, doc

    def _walk(self, kind: str) -> Iterator[tuple[Path, str]]:
        top = self.base / kind
        if not top.is_dir():
            return
        for alg in sorted(top.iterdir()):
            for entry in sorted(alg.iterdir()):
                yield entry, f"{alg.name}:{entry.name}"

    @contextlib.contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[None]:
        self.ensure_dirs()
        with open(self.base / name, "a") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _refs_update(self) -> Iterator[dict[str, dict[str, Any]]]:
        with self._flock("refs.lock", fcntl.LOCK_EX):
            refs = self.refs()
            yield refs
            write_atomic(self.base / "repositories.json", json.dumps({"refs": refs}, indent=2).encode())


def _parse(ref: str) -> Reference | None:
    try:
        return Reference.parse(ref)
    except InvalidReference:
        return None


def _tag_of(ref: str) -> str | None:
    parsed = _parse(ref)
    return parsed.tag if parsed is not None else None


def _last_comment(config: dict[str, Any]) -> str:
    history = config.get("history") or []
    return str(history[-1].get("comment", "")) if history else ""


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
