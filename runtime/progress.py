"""Pull progress: a rich bar per layer on a terminal, Docker's plain status lines otherwise, or nothing."""

from __future__ import annotations

from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)


class PullReporter(Protocol):
    def status(self, line: str) -> None:
        """A line about the whole image (`Digest: ...`, `Status: ...`)."""

    def layer(self, digest: str, status: str, total: int | None = None) -> None:
        """A layer changed state (`Pulling fs layer`, `Already exists`, `Download complete`, ...)."""

    def advance(self, digest: str, nbytes: int) -> None:
        """`nbytes` more of the layer were downloaded."""

    def close(self) -> None: ...


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


class SilentReporter:
    def status(self, line: str) -> None:
        return None

    def layer(self, digest: str, status: str, total: int | None = None) -> None:
        return None

    def advance(self, digest: str, nbytes: int) -> None:
        return None

    def close(self) -> None:
        return None


class PlainReporter:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def status(self, line: str) -> None:
        print(line, file=self._out, flush=True)

    def layer(self, digest: str, status: str, total: int | None = None) -> None:
        print(f"{short(digest)}: {status}", file=self._out, flush=True)

    def advance(self, digest: str, nbytes: int) -> None:
        return None

    def close(self) -> None:
        return None


class RichReporter:
    def __init__(self, out: TextIO) -> None:
        self._progress = Progress(
            TextColumn("{task.fields[layer]}: {task.description:<18}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(file=out),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._progress.start()

    def status(self, line: str) -> None:
        self._progress.console.print(line, highlight=False, markup=False)

    def layer(self, digest: str, status: str, total: int | None = None) -> None:
        task = self._tasks.get(digest)
        if task is None:
            self._tasks[digest] = self._progress.add_task(status, total=total, layer=short(digest))
            return
        self._progress.update(task, description=status)
        if total is not None:
            self._progress.update(task, total=total)
        if status in ("Already exists", "Pull complete"):
            task_total = self._progress.tasks[self._tasks_index(task)].total
            if task_total is not None:
                self._progress.update(task, completed=task_total)

    def advance(self, digest: str, nbytes: int) -> None:
        task = self._tasks.get(digest)
        if task is not None:
            self._progress.advance(task, nbytes)

    def close(self) -> None:
        self._progress.stop()

    def _tasks_index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self._progress.tasks) if t.id == task)


def reporter_for(out: TextIO, enabled: bool) -> PullReporter:
    if not enabled:
        return SilentReporter()
    if out.isatty():
        return RichReporter(out)
    return PlainReporter(out)
