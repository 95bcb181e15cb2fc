"""The record of the last garbage collection (`dockyard gc` or the server's `gc.interval` runs):
when it finished and what it freed, kept in storage so that every replica's UI can show it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from registry import paths
from storage_backends import PathNotFound, StorageBackend, StorageError

log = logging.getLogger("dockyard.gc")


@dataclass(frozen=True, slots=True)
class LastRun:
    finished: float  # epoch seconds
    dry_run: bool
    blobs_deleted: int
    bytes_freed: int
    manifests_deleted: int

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "finished": self.finished,
                "dry_run": self.dry_run,
                "blobs_deleted": self.blobs_deleted,
                "bytes_freed": self.bytes_freed,
                "manifests_deleted": self.manifests_deleted,
            }
        )


async def record_run(backend: StorageBackend, run: LastRun) -> None:
    """Replace the record (one `put`: a reader sees the old record or the new one, never half)."""
    try:
        await backend.put(paths.gc_last_run(), run.as_json())
    except (StorageError, OSError) as exc:
        # The collection itself is done; only its record is missing.
        log.warning("gc: could not record the run in storage: %s", exc)


async def last_run(backend: StorageBackend) -> LastRun | None:
    """The last recorded run; None when there is none (or the record is not one of ours)."""
    try:
        data = orjson.loads(await backend.get(paths.gc_last_run()))
        return LastRun(
            finished=float(data["finished"]),
            dry_run=bool(data["dry_run"]),
            blobs_deleted=int(data["blobs_deleted"]),
            bytes_freed=int(data["bytes_freed"]),
            manifests_deleted=int(data["manifests_deleted"]),
        )
    except PathNotFound:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.warning("gc: ignoring an unreadable record at %s", paths.gc_last_run())
        return None
