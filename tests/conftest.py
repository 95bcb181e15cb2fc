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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under DOCKYARD_E2E=required an end-to-end or privileged test may not be skipped."""
    outcome = yield
    report = outcome.get_result()
    if E2E_REQUIRED and report.skipped and not hasattr(report, "wasxfail"):
        if item.get_closest_marker("e2e") or item.get_closest_marker("privileged"):
            report.outcome = "failed"
            report.longrepr = f"end-to-end test skipped under DOCKYARD_E2E=required: {report.longrepr}"
