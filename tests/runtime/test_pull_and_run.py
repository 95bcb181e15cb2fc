"""The newcomer's demo end to end: a busybox web image pushed to a Dockyard started here, then
`dockyard run --rm -p HOST:80 127.0.0.1:PORT/demo/web` pulls it and serves the page."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import imagebuild
from tests.conftest import require_tool
from tests.runtime.conftest import Dockyard
from tests.servers import RegistryProcess, free_port, start_registry

pytestmark = [pytest.mark.privileged, pytest.mark.e2e]

PAGE = b"<h1>Hello from Dockyard</h1>\n"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = start_registry(tmp_path / "registry")
    yield server
    server.stop()


def _push_web_image(registry: RegistryProcess, tmp_path: Path) -> str:
    require_tool("skopeo")
    base = imagebuild.layer(imagebuild.busybox_entries())
    site = imagebuild.layer(
        [imagebuild.directory("www"), imagebuild.file("www/index.html", PAGE), imagebuild.whiteout("bin/vi")]
    )
    config = {
        "Cmd": ["httpd", "-f", "-v", "-p", "80", "-h", "/www"],
        "ExposedPorts": {"80/tcp": {}},
        "WorkingDir": "/www",
    }
    imagebuild.write_layout(tmp_path / "layout", imagebuild.ImageSpec([base, site], config), tag="latest")
    imagebuild.push(tmp_path / "layout", "latest", f"{registry.address}/demo/web:latest")
    # As in the README: a registry on localhost is spoken to over plain HTTP without any flag.
    return f"localhost:{registry.port}/demo/web"


def test_pull_and_run_demo(dy: Dockyard, registry: RegistryProcess, tmp_path: Path) -> None:
    ref = _push_web_image(registry, tmp_path)
    port = free_port()
    # Foreground, as in the README: the CLI stays attached while the server runs.
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "run", "--rm", "--name", "demo", "-p", f"{port}:80", ref],
        env=dy.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
        assert body == PAGE
        assert dy("run", "--rm", ref, "ls", "/bin/vi").returncode != 0  # the upper layer's whiteout
    finally:
        dy("stop", "-t", "2", "demo")
        proc.wait(30)
    _, err = proc.communicate()
    assert b"Unable to find image" in err  # pulled on first use, as docker run does
    assert dy("ps", "-aq").stdout.strip() == ""  # --rm removed it
