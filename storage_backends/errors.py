"""Backend-neutral storage errors: every backend raises these and nothing else."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage error."""


class PathNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no such key: {key}")
        self.key = key


class InvalidPath(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"invalid storage key: {key!r}")
        self.key = key


class InvalidOffset(StorageError):
    def __init__(self, key: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {key}")
        self.key = key
        self.offset = offset


class BackendError(StorageError):
    """The store failed (I/O error, S3 error after retries): the request gets a 5xx."""
