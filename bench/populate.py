"""Fills a store with many tags or repositories fast, by writing distribution's layout directly.

Dockyard and distribution share the on-disk layout, so the same files serve both. Pushing 10,000
tags through the API would take minutes and measure the push path, not the listing.
"""

from __future__ import annotations

import os
from pathlib import Path


def _link(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest)


def _revision(repo_dir: Path, digest: str) -> Path:
    algorithm, encoded = digest.split(":", 1)
    return repo_dir / "_manifests" / "revisions" / algorithm / encoded / "link"


def write_tags(data_root: Path, repo: str, manifest_digest: str, blob_digests: list[str], count: int) -> list[str]:
    """`count` tags in `repo`, all naming one manifest whose blobs (already in the store) get linked."""
    repo_dir = data_root / "repositories" / repo
    algorithm, encoded = manifest_digest.split(":", 1)
    for digest in blob_digests:
        blob_algorithm, blob_encoded = digest.split(":", 1)
        _link(repo_dir / "_layers" / blob_algorithm / blob_encoded / "link", digest)
    _link(_revision(repo_dir, manifest_digest), manifest_digest)
    tags = [f"t{number:05d}" for number in range(count)]
    tags_dir = repo_dir / "_manifests" / "tags"
    for tag in tags:
        index = tags_dir / tag / "index" / algorithm / encoded
        os.makedirs(index)
        (index / "link").write_text(manifest_digest)
        (tags_dir / tag / "current").mkdir()
        (tags_dir / tag / "current" / "link").write_text(manifest_digest)
    return tags


def write_repositories(data_root: Path, prefix: str, count: int, blob_digest: str) -> list[str]:
    """`count` repositories `<prefix>/r00000`…, each holding one layer link (what makes a repository
    for distribution's catalog walk)."""
    algorithm, encoded = blob_digest.split(":", 1)
    names = [f"{prefix}/r{number:05d}" for number in range(count)]
    for name in names:
        layer = data_root / "repositories" / name / "_layers" / algorithm / encoded
        os.makedirs(layer)
        (layer / "link").write_text(blob_digest)
    return names
