"""`dockyard logs [-f] [-t] [-n N|--tail N] [--since T] [--until T]`: the container's json-file
log, line by line, as Docker prints it."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from runtime.containers import Container, ContainerStore

__all__ = ["cmd_logs", "parse_since"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Line:
    stream: str
    text: str
    time: str


def parse_since(value: str, now: float | None = None) -> float:
    """Docker's --since/--until: an RFC 3339 time, a Unix time (`1700000000.5`), or a Go
    duration before now (`10m`, `1h30m`)."""
    from runtime.commands.ps import parse_time

    now = time.time() if now is None else now
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if _DURATION.fullmatch(text) or re.fullmatch(f"(?:{_DURATION.pattern})+", text):
        return now - sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            text += "T00:00:00"
        if text.endswith("Z") or ("T" in text and not re.search(r"[+-]\d{2}:\d{2}$", text)):
            return parse_time(text)
        from datetime import datetime

        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f'invalid value for "since": failed to parse value as time or duration: "{value}"') from None


def _lines(records: Iterable[str], pending: dict[str, str]) -> Iterator[Line]:
    """Whole lines out of the supervisor's records, which hold whatever one read returned."""
    for record in records:
        try:
            data = json.loads(record)
        except ValueError:
            continue
        stream = str(data.get("stream", "stdout"))
        text = pending.pop(stream, "") + str(data.get("log", ""))
        parts = text.split("\n")
        for part in parts[:-1]:
            yield Line(stream, part + "\n", str(data.get("time", "")))
        if parts[-1]:
            pending[stream] = parts[-1]


def _emit(line: Line, timestamps: bool) -> None:
    stream = sys.stdout if line.stream == "stdout" else sys.stderr
    stream.write(f"{line.time} {line.text}" if timestamps else line.text)
    stream.flush()


def _open(c: Container, follow: bool) -> IO[str] | None:
    while True:
        try:
            return open(c.log_path)
        except FileNotFoundError:
            if not follow or c.state().status != "running":
                return None
            time.sleep(0.1)


def cmd_logs(args: argparse.Namespace) -> int:
    from runtime.commands.ps import parse_time
    from runtime.images import default_root

    c = ContainerStore(default_root()).get(args.container)
    since = parse_since(args.since) if args.since else None
    until = parse_since(args.until) if args.until else None
    tail = -1 if args.tail in ("all", "") else int(args.tail)

    def wanted(line: Line) -> bool:
        if since is None and until is None:
            return True
        when = parse_time(line.time) if line.time else 0.0
        return (since is None or when >= since) and (until is None or when <= until)

    f = _open(c, args.follow)
    if f is None:
        return 0
    pending: dict[str, str] = {}
    with f:
        first = [line for line in _lines(f.readlines(), pending) if wanted(line)]
        for line in first[-tail:] if tail > 0 else ([] if tail == 0 else first):
            _emit(line, args.timestamps)
        while args.follow and until is None:
            running = c.state().status == "running"
            # Read once more after the exit: the supervisor writes the last lines before recording it.
            chunk = f.readlines()
            for line in _lines(chunk, pending):
                if wanted(line):
                    _emit(line, args.timestamps)
            if not running:
                break
            if not chunk:
                time.sleep(0.05)
    for stream, rest in pending.items():
        _emit(Line(stream, rest, ""), False)
    return 0
