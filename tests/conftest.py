"""Shared fixtures. End-to-end pieces skip with a reason when a tool is missing, and fail instead
when DOCKYARD_E2E=required (as in CI)."""

from __future__ import annotations

import os
import shutil

import pytest

E2E_REQUIRED = os.environ.get("DOCKYARD_E2E") == "required"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under DOCKYARD_E2E=required, fail) unless `condition` holds."""
    if condition:
        return
    if E2E_REQUIRED:
        pytest.fail(f"required for the end-to-end suite: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")
