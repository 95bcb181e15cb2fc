"""The optional storage features (storage_backends/base.py: `WalksTree`, `LocalFiles`), checked
against every backend that declares one, and found by the registry behind its wrappers.

A feature is declared by implementing its protocol; the answers must agree with the plain contract
(a walk with what `list` says, a local file with what `get` reads).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from oci.digest import Digest
from registry.metrics import InstrumentedBackend, Metrics
from registry.store import Store
from storage_backends import BACKENDS, LocalFiles, StorageBackend, WalksTree, Wrapper, innermost
from tests.contract.conftest import OPENERS

FEATURES: tuple[Any, ...] = (WalksTree, LocalFiles)


def backend_class(name: str) -> type:
    module_name, _, class_name = BACKENDS[name].partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


def implementing(feature: Any) -> list[str]:
    return [name for name in OPENERS if issubclass(backend_class(name), feature)]


def test_the_filesystem_declares_both_features() -> None:
    # Without this, a renamed method would silently drop the feature and its tests with it.
    assert implementing(WalksTree) == ["filesystem"]
    assert implementing(LocalFiles) == ["filesystem"]


async def test_a_backend_is_what_its_class_declares(backend: StorageBackend) -> None:
    for feature in FEATURES:
        assert isinstance(backend, feature) == issubclass(type(backend), feature)


async def _walk_by_listing(backend: StorageBackend, prefix: str, descend: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}

    async def visit(relative: str) -> None:
        key = f"{prefix}/{relative}" if relative else prefix
        entries = await backend.list(key)
        found[relative] = entries
        for entry in entries:
            child = f"{key}/{entry}"
            if descend(entry) and (await backend.stat(child)).is_dir:
                await visit(f"{relative}/{entry}" if relative else entry)

    await visit("")
    return found


@pytest.mark.parametrize("opener", implementing(WalksTree), indirect=True)
async def test_walk_agrees_with_list(backend: StorageBackend) -> None:
    assert isinstance(backend, WalksTree)
    for key in ("r/a/_layers/x", "r/a/b/_manifests/y", "r/c/file", "r/_hidden/d/e", "r/a/b/c/d/deep"):
        await backend.put(key, b"1")

    def visible(entry: str) -> bool:
        return not entry.startswith("_")

    tree = await backend.walk("r", visible)
    assert tree[0][0] == ""  # the prefix itself comes first
    walked = dict(tree)
    assert len(walked) == len(tree)  # each directory once
    assert walked == await _walk_by_listing(backend, "r", visible)
    assert walked == {
        "": ["_hidden", "a", "c"],
        "a": ["_layers", "b"],
        "a/b": ["_manifests", "c"],
        "a/b/c": ["d"],
        "a/b/c/d": ["deep"],
        "c": ["file"],
    }
    assert await backend.walk("missing", visible) == []
    await backend.delete("r")
    assert await backend.walk("r", visible) == []


@pytest.mark.parametrize("opener", implementing(WalksTree), indirect=True)
async def test_walk_hides_unfinished_writes(backend: StorageBackend) -> None:
    assert isinstance(backend, WalksTree)
    writer = await backend.writer("w/pending")
    await writer.write(b"not yet")
    assert dict(await backend.walk("w", lambda entry: True)) in ({}, {"": []})
    await writer.cancel()
    await backend.delete("w")


@pytest.mark.parametrize("opener", implementing(LocalFiles), indirect=True)
async def test_local_path_holds_the_bytes_get_reads(backend: StorageBackend) -> None:
    assert isinstance(backend, LocalFiles)
    await backend.put("l/blob/data", b"local bytes")
    path = backend.local_path("l/blob/data")
    assert isinstance(path, Path) and path.is_absolute()
    assert path.read_bytes() == await backend.get("l/blob/data")
    await backend.delete("l")
    assert not path.exists()


async def test_the_registry_finds_features_behind_its_wrapper(
    backend: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapped = InstrumentedBackend(backend, Metrics())
    assert isinstance(wrapped, Wrapper)
    assert innermost(wrapped) is backend
    for feature in FEATURES:
        # The wrapper itself never claims a feature its inner backend lacks.
        assert not isinstance(wrapped, feature)
    store = Store(wrapped)
    await store.uploads.start_upload("team/app")
    listings: list[str] = []
    plain_list = backend.list

    async def counted(prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        listings.append(prefix)
        return await plain_list(prefix, after, limit)

    monkeypatch.setattr(backend, "list", counted)
    assert await store.repositories() == ["team/app"]
    # A backend that walks a tree in one call is asked to; the others are walked with `list`.
    assert (listings == []) == isinstance(backend, WalksTree)
    path = store.blob_path(Digest.of(b"x"))
    assert (path is not None) == isinstance(backend, LocalFiles)
    monkeypatch.undo()
    await backend.delete("docker")
