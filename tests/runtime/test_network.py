"""Networking (issue 5, points 3 and 5): a private namespace with only loopback, and published
ports through the userspace forwarder."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from tests.runtime.conftest import IMAGE, Dockyard
from tests.servers import free_port

pytestmark = pytest.mark.privileged

HTTPD = "mkdir -p /www && echo hello-from-dockyard > /www/index.html && exec httpd -f -p 80 -h /www"


def _get(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_published_port_answers(dy: Dockyard) -> None:
    port = free_port()
    dy("run", "-d", "--name", "web", "-p", f"{port}:80", IMAGE, "sh", "-c", HTTPD, check=True)
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-dockyard\n"
    # Many connections, one after another and at once.
    for _ in range(5):
        assert _get(f"http://127.0.0.1:{port}/index.html") == "hello-from-dockyard\n"
    assert f"127.0.0.1:{port}->80/tcp" in dy("ps").stdout
    # The container itself has no address but loopback.
    addrs = dy("exec", "web", "ip", "-o", "addr").stdout
    assert all(" lo " in line for line in addrs.splitlines()), addrs
    dy("rm", "-f", "web", check=True)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_publish_on_explicit_address(dy: Dockyard) -> None:
    port = free_port()
    dy("run", "-d", "--name", "web6", "-p", f"127.0.0.2:{port}:80", IMAGE, "sh", "-c", HTTPD, check=True)
    assert _get(f"http://127.0.0.2:{port}/") == "hello-from-dockyard\n"


def test_port_already_in_use_fails_cleanly(dy: Dockyard) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = dy("run", "--rm", "-p", f"{port}:80", IMAGE, "true")
    assert r.returncode == 125
    assert "Address already in use" in r.stderr


def test_container_cannot_reach_host_loopback(dy: Dockyard) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        r = dy.run(IMAGE, "sh", "-c", f"nc -w 1 127.0.0.1 {port} </dev/null && echo reached || echo isolated")
    assert r.stdout.strip() == "isolated"
