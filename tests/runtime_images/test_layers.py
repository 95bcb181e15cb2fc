"""Unpacking layers: metadata kept, escapes and device nodes refused, whiteouts in overlay format, flattening."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from runtime.layers import (
    OPAQUE_XATTR,
    LayerError,
    Whiteouts,
    clean_path,
    flatten,
    is_whiteout_device,
    unpack,
    whiteout_target,
)
from tests.imagebuild import (
    Entry,
    device,
    directory,
    file,
    hardlink,
    layer,
    opaque,
    sha256,
    symlink,
    tar_bytes,
    whiteout,
)


def _unpack(entries: list[Entry], dest: Path, compress: bool = False, whiteouts: Whiteouts = "overlay") -> str:
    blob = layer(entries, compress=compress)
    dest.mkdir(exist_ok=True)
    result = unpack(io.BytesIO(blob.blob), dest, whiteouts=whiteouts)
    assert result.diff_id == blob.diff_id
    return result.diff_id


# --- pure functions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [("a/b", ("a", "b")), ("./a//b/", ("a", "b")), (".", ()), ("./", ()), ("a/./b", ("a", "b"))],
)
def test_clean_path(name: str, parts: tuple[str, ...]) -> None:
    assert clean_path(name) == parts


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "a/../b"])
def test_clean_path_refuses_escapes(name: str) -> None:
    with pytest.raises(LayerError):
        clean_path(name)


def test_whiteout_target() -> None:
    assert whiteout_target(("etc", "motd")) is None
    assert whiteout_target(("etc", ".wh.motd")) == ("whiteout", ("etc", "motd"))
    assert whiteout_target((".wh.etc",)) == ("whiteout", ("etc",))
    assert whiteout_target(("tmp", ".wh..wh..opq")) == ("opaque", ("tmp",))
    for bad in ((".wh.",), ("a", ".wh.."), ("a", ".wh..wh.x")):
        with pytest.raises(LayerError):
            whiteout_target(bad)


# --- extraction without whiteouts ------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_unpack_keeps_contents_and_metadata(tmp_path: Path, compress: bool) -> None:
    dest = tmp_path / "out"
    _unpack(
        [
            directory("etc", mode=0o751, mtime=1_000_000),
            file("etc/hosts", b"127.0.0.1 localhost\n", mode=0o640, uid=12, gid=34, mtime=1_234_567),
            file("bin/tool", b"#!/bin/sh\n", mode=0o4755),
            symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
            hardlink("etc/hosts.bak", "etc/hosts"),
        ],
        dest,
        compress=compress,
    )
    hosts = (dest / "etc/hosts").stat()
    assert (dest / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert stat.S_IMODE(hosts.st_mode) == 0o640
    assert hosts.st_mtime == 1_234_567
    assert stat.S_IMODE((dest / "etc").stat().st_mode) == 0o751
    assert (dest / "etc").stat().st_mtime == 1_000_000
    assert os.readlink(dest / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    assert (dest / "etc/hosts.bak").stat().st_ino == hosts.st_ino
    assert (dest / "bin").is_dir()  # implied parent created
    if os.geteuid() == 0:
        assert (hosts.st_uid, hosts.st_gid) == (12, 34)
        assert stat.S_IMODE((dest / "bin/tool").stat().st_mode) == 0o4755


def test_later_entry_replaces_earlier(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    _unpack([file("a", b"one"), file("a", b"two"), symlink("l", "x"), file("l", b"plain")], dest)
    assert (dest / "a").read_bytes() == b"two"
    assert not (dest / "l").is_symlink()


def test_diff_id_is_the_uncompressed_digest(tmp_path: Path) -> None:
    blob = layer([file("x", b"data")], compress=True)
    (tmp_path / "o").mkdir()
    result = unpack(io.BytesIO(blob.blob), tmp_path / "o")
    assert result.diff_id == sha256(tar_bytes([file("x", b"data")]))
    assert result.diff_id != blob.digest
    assert result.size == 4


# --- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("../escape", b"x")], "escapes"),
        ([file("a/../../escape", b"x")], "escapes"),
        ([file("/abs", b"x")], "absolute"),
        ([symlink("link", "/"), file("link/evil", b"x")], "symlink"),
        ([symlink("link", "../../.."), directory("link/sub")], "symlink"),
        ([directory("d"), symlink("d/up", ".."), file("d/up/x", b"x")], "symlink"),
        ([file("t", b"x"), hardlink("h", "../../etc/passwd")], "escapes"),
        ([hardlink("h", "/etc/passwd")], "absolute"),
        ([symlink("link", "/etc"), hardlink("h", "link/passwd")], "symlink"),
        ([hardlink("h", "missing")], "missing"),
        ([device("dev/null")], "device"),
        ([device("dev/sda", kind=tarfile.BLKTYPE, major=8, minor=0)], "device"),
        ([device("pipe", kind=tarfile.FIFOTYPE)], "device"),
        ([file("f", b"x"), file("f/child", b"y")], "not a directory"),
    ],
)
def test_refuses_escapes_and_devices(tmp_path: Path, entries: list[Entry], message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "root" / "a" / "b"
    dest.mkdir(parents=True)
    with pytest.raises(LayerError, match=message):
        unpack(io.BytesIO(tar_bytes(entries)), dest)
    assert not (tmp_path / "root" / "escape").exists()
    assert not (tmp_path / "escape").exists()
    assert list(outside.iterdir()) == []
    assert not Path("/evil").exists()


def test_symlink_trick_does_not_write_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "root"
    dest.mkdir()
    entries = [symlink("link", str(outside)), file("link/planted", b"x")]
    with pytest.raises(LayerError):
        unpack(io.BytesIO(tar_bytes(entries)), dest)
    assert not (outside / "planted").exists()


def test_corrupt_archive(tmp_path: Path) -> None:
    blob = layer([file("x", b"y" * 10000)], compress=True).blob
    with pytest.raises(LayerError, match="corrupt"):
        unpack(io.BytesIO(blob[: len(blob) // 2]), tmp_path)


# --- whiteouts applied in place (no root needed) ---------------------------------------------------------------


def test_apply_mode_deletes_whiteouts_and_opaque_children(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    _unpack([file("etc/keep"), file("etc/gone"), file("opq/lower1"), file("opq/sub/lower2"), file("x")], dest)
    _unpack(
        [
            file("opq/new-before-marker", b"n"),
            opaque("opq"),
            whiteout("etc/gone"),
            file("x", b"again"),
            whiteout("x"),  # an entry of the same layer survives its whiteout
        ],
        dest,
        whiteouts="delete",
    )
    assert (dest / "etc/keep").exists()
    assert not (dest / "etc/gone").exists()
    assert sorted(p.name for p in (dest / "opq").iterdir()) == ["new-before-marker"]
    assert (dest / "x").read_bytes() == b"again"


# --- overlay format (root: whiteout devices and trusted.* xattrs) ----------------------------------------------


@pytest.mark.privileged
def test_overlay_whiteouts(whiteout_tmp_path: Path) -> None:
    tmp_path = whiteout_tmp_path
    dest = tmp_path / "upper"
    _unpack([whiteout("etc/gone"), opaque("tmp"), file("tmp/fresh", b"f"), whiteout(".profile")], dest)
    st = (dest / "etc/gone").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and is_whiteout_device(st)
    assert is_whiteout_device((dest / ".profile").lstat())
    assert os.getxattr(dest / "tmp", OPAQUE_XATTR) == b"y"
    assert not (dest / "tmp/.wh..wh..opq").exists()
    assert (dest / "tmp/fresh").read_bytes() == b"f"


@pytest.mark.privileged
def test_overlay_mount_hides_whited_out_files(whiteout_tmp_path: Path) -> None:
    tmp_path = whiteout_tmp_path
    lower, upper = tmp_path / "l1", tmp_path / "l2"
    _unpack([file("etc/keep", b"k"), file("etc/gone", b"g"), file("tmp/a", b"a"), file("tmp/sub/b", b"b")], lower)
    _unpack([whiteout("etc/gone"), opaque("tmp"), file("tmp/new", b"n")], upper)
    merged = tmp_path / "merged"
    merged.mkdir()
    # Two lower directories, no upper: a read-only overlay, exactly how image layers are stacked.
    mount = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"overlayfs unavailable here: {mount.stderr.decode().strip()}")
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "tmp")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    flat = tmp_path / "flat"
    flat.mkdir()
    flatten([lower, upper], flat)
    assert sorted(os.listdir(flat / "etc")) == ["keep"]
    assert sorted(os.listdir(flat / "tmp")) == ["new"]


@pytest.mark.privileged
def test_same_layer_delete_then_recreate_dir_is_opaque(whiteout_tmp_path: Path) -> None:
    tmp_path = whiteout_tmp_path
    dest = tmp_path / "upper"
    _unpack([whiteout("d"), directory("d"), file("d/x", b"x")], dest)
    assert (dest / "d").is_dir()
    assert os.getxattr(dest / "d", OPAQUE_XATTR) == b"y"


@pytest.mark.privileged
def test_flatten_keeps_metadata_and_hardlinks(whiteout_tmp_path: Path) -> None:
    tmp_path = whiteout_tmp_path
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    _unpack([file("bin/busybox", b"B", mode=0o755, uid=7, gid=8), hardlink("bin/sh", "bin/busybox")], l1)
    _unpack([symlink("bin/ls", "busybox"), whiteout("bin/sh"), file("etc/new", b"n")], l2)
    flat = tmp_path / "flat"
    flat.mkdir()
    flatten([l1, l2], flat)
    st = (flat / "bin/busybox").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (7, 8, 0o755)
    assert not (flat / "bin/sh").exists()
    assert os.readlink(flat / "bin/ls") == "busybox"
    assert (flat / "etc/new").read_bytes() == b"n"
    assert not any(is_whiteout_device(p.lstat()) for p in flat.rglob("*"))


def test_zstd_layers(tmp_path: Path) -> None:
    raw = tar_bytes([file("z", b"zstd")])
    try:
        import zstandard
    except ImportError:
        # Optional: without the module a zstd layer is refused with a reason, never misread as a plain tar.
        frame = b"\x28\xb5\x2f\xfd" + b"\x00" * 16
        with pytest.raises(LayerError, match="zstandard"):
            unpack(io.BytesIO(frame), tmp_path)
        return
    blob = zstandard.ZstdCompressor().compress(raw)
    result = unpack(io.BytesIO(blob), tmp_path)
    assert result.diff_id == sha256(raw)
    assert (tmp_path / "z").read_bytes() == b"zstd"
