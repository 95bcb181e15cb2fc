"""Docker's prune conventions: a `[y/N]` question read from stdin (terminal or not; no answer is
no), and the `Total reclaimed space` line in go-units' four-digit decimal sizes."""

from __future__ import annotations

import sys

__all__ = ["confirm", "reclaimed"]


def confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def reclaimed(size: int) -> str:
    """`Total reclaimed space: 1.234MB` (go-units HumanSize: decimal units, %.4g)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"Total reclaimed space: {value:.4g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")
