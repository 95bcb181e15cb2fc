"""Build small OCI images offline for tests: tar layers from a static busybox and chosen files, whiteouts and
opaque directories, written as an OCI image layout that `skopeo copy oci:DIR:TAG docker://...` can push.

    layers = [busybox_layer(), layer([file("etc/motd", b"hi\\n"), whiteout("bin/vi")])]
    image = write_layout(tmp_path / "layout", [layer_blob(ls) for ls in layers], tag="v1")
    push(tmp_path / "layout", "v1", "127.0.0.1:5000/demo/web:v1")
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import require_busybox, require_tool

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
FIXED_MTIME = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"

Entry = tuple[tarfile.TarInfo, bytes | None]


# --- tar entries -----------------------------------------------------------------------------------------------


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = FIXED_MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = mtime
    return info


def file(
    name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = FIXED_MTIME
) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    return info, data


def directory(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = FIXED_MTIME) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def symlink(name: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.LNKTYPE, 0o644)
    info.linkname = target
    return info, None


def device(name: str, kind: bytes = tarfile.CHRTYPE, major: int = 1, minor: int = 3) -> Entry:
    info = _info(name, kind, 0o666)
    info.devmajor, info.devminor = major, minor
    return info, None


def whiteout(path: str) -> Entry:
    """An OCI whiteout removing `path` of a lower layer."""
    parent, _, base = path.rstrip("/").rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(dirpath: str) -> Entry:
    """An OCI opaque whiteout hiding every lower-layer child of `dirpath`."""
    return file(f"{dirpath.rstrip('/')}/.wh..wh..opq")


def busybox_entries(applets: Iterable[str] | None = None) -> list[Entry]:
    """A minimal root filesystem: busybox with applet symlinks, /etc/passwd and /etc/group, /tmp."""
    busybox = require_busybox()
    names = list(applets) if applets is not None else _busybox_applets(busybox)
    entries = [
        directory("bin"),
        file("bin/busybox", busybox.read_bytes(), mode=0o755),
        *[symlink(f"bin/{name}", "busybox") for name in names if name != "busybox"],
        directory("etc"),
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        file("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        directory("root", mode=0o700),
        directory("tmp", mode=0o1777),
    ]
    return entries


def _busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout
    return sorted(set(out.split()))


def tar_bytes(entries: Sequence[Entry]) -> bytes:
    """An uncompressed tar of exactly these entries, names written as given (escapes included)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


# --- blobs and layouts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    blob: bytes  # as stored in the registry (maybe compressed)
    diff_id: str  # digest of the uncompressed tar
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.blob)


def layer(entries: Sequence[Entry], compress: bool = True) -> Layer:
    raw = tar_bytes(entries)
    if not compress:
        return Layer(raw, sha256(raw), OCI_LAYER)
    return Layer(gzip.compress(raw, mtime=0), sha256(raw), OCI_LAYER_GZIP)


@dataclass
class Image:
    manifest: bytes
    config: bytes
    layers: list[Layer]
    index: bytes | None = None

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def id(self) -> str:
        return sha256(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]


@dataclass
class ImageSpec:
    layers: list[Layer]
    config: dict[str, Any] = field(default_factory=dict)  # merged into the config's "config" object
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    history: list[dict[str, Any]] | None = None


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(spec: ImageSpec) -> Image:
    runtime_config: dict[str, Any] = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    runtime_config.update({"Cmd": ["/bin/sh"]} | spec.config)
    history = spec.history or [
        {"created": CREATED, "created_by": f"layer {n}", "comment": "imagebuild"} for n in range(len(spec.layers))
    ]
    config: dict[str, Any] = {
        "created": CREATED,
        "architecture": spec.architecture,
        "os": spec.os,
        "config": runtime_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in spec.layers]},
        "history": history,
    }
    if spec.variant:
        config["variant"] = spec.variant
    config_bytes = _json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": len(la.blob)} for la in spec.layers],
    }
    return Image(_json(manifest), config_bytes, list(spec.layers))


def platform_of(spec: ImageSpec) -> dict[str, str]:
    platform = {"os": spec.os, "architecture": spec.architecture}
    if spec.variant:
        platform["variant"] = spec.variant
    return platform


def write_layout(dest: Path, spec: ImageSpec | Sequence[ImageSpec], tag: str = "latest") -> Image:
    """Write an OCI image layout at `dest` holding one image, or an index of several when given a list.
    Returns the (first) image; `Image.index` holds the index bytes when one was written."""
    specs = [spec] if isinstance(spec, ImageSpec) else list(spec)
    images = [build_image(s) for s in specs]
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for image in images:
        for blob in (image.manifest, image.config, *(layer.blob for layer in image.layers)):
            (blobs / sha256(blob).partition(":")[2]).write_bytes(blob)
    if isinstance(spec, ImageSpec):
        top = {"mediaType": OCI_MANIFEST, "digest": images[0].manifest_digest, "size": len(images[0].manifest)}
    else:
        index = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": image.manifest_digest,
                        "size": len(image.manifest),
                        "platform": platform_of(s),
                    }
                    for image, s in zip(images, specs, strict=True)
                ],
            }
        )
        (blobs / sha256(index).partition(":")[2]).write_bytes(index)
        images[0].index = index
        top = {"mediaType": OCI_INDEX, "digest": sha256(index), "size": len(index)}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_path = dest / "index.json"
    existing = json.loads(index_path.read_text())["manifests"] if index_path.exists() else []
    existing = [m for m in existing if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index_path.write_text(json.dumps({"schemaVersion": 2, "manifests": [*existing, top]}))
    return images[0]


def push(layout: Path, tag: str, dest_ref: str, creds: str | None = None, multi: bool = False) -> None:
    """Copy `layout:tag` to `dest_ref` (host:port/name:tag) over plain HTTP with skopeo."""
    skopeo = require_tool("skopeo")
    cmd = [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "--preserve-digests"]
    if multi:
        cmd.append("--all")
    if creds:
        cmd += ["--dest-creds", creds]
    cmd += [f"oci:{layout}:{tag}", f"docker://{dest_ref}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
