"""Where bytes live. Backends are chosen by name from `BACKENDS`; imports are lazy so that
boto3 loads only when S3 is configured."""

from __future__ import annotations

import importlib
from typing import Any

from storage_backends.base import (
    READ_CHUNK,
    BlobWriter,
    FileInfo,
    LocalFiles,
    StorageBackend,
    Tree,
    WalksTree,
    Wrapper,
    innermost,
)
from storage_backends.errors import BackendError, InvalidOffset, InvalidPath, PathNotFound, StorageError

BACKENDS: dict[str, str] = {
    "filesystem": "storage_backends.filesystem:FilesystemBackend",
    "inmemory": "storage_backends.memory:MemoryBackend",
    "s3": "storage_backends.s3:S3Backend",
}


def open_backend(name: str, options: Any) -> StorageBackend:
    """Build the backend called `name` from its typed options (a config dataclass)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown storage backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: StorageBackend = cls.from_config(options)
    return backend


__all__ = [
    "BACKENDS",
    "READ_CHUNK",
    "BackendError",
    "BlobWriter",
    "FileInfo",
    "InvalidOffset",
    "InvalidPath",
    "LocalFiles",
    "PathNotFound",
    "StorageBackend",
    "StorageError",
    "Tree",
    "WalksTree",
    "Wrapper",
    "innermost",
    "open_backend",
]
