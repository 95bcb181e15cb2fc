"""User-defined networks (issue 16): a bridge in a namespace of its own per network, a veth pair
per container, names through /etc/hosts, `--link`, published ports, and nothing left behind."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest

from tests.runtime.conftest import IMAGE, Dockyard
from tests.servers import free_port

pytestmark = pytest.mark.privileged

HTTPD = "mkdir -p /www && echo page-of-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


def _host_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _host_netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def _wget(dy: Dockyard, container: str, url: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """GET `url` from inside `container`: the page's body as stdout, returncode 1 when nothing
    answered. Through busybox nc: Debian's static busybox wget segfaults after connecting to
    any address but loopback (outside Dockyard too: `ip netns exec NS busybox wget`)."""
    host = url.removeprefix("http://").rstrip("/")
    script = f"printf 'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | nc -w 2 {host} 80"
    deadline = time.monotonic() + timeout
    while True:
        r = dy("exec", container, "sh", "-c", script)
        head, sep, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
        ok = r.returncode == 0 and head.startswith("HTTP/1.1 200") and bool(sep)
        if ok or time.monotonic() > deadline:
            return subprocess.CompletedProcess(r.args, 0 if ok else 1, body if ok else "", r.stderr)
        time.sleep(0.2)


def test_containers_on_one_network_reach_each_other_by_name(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "front", check=True)
    dy("network", "create", "--subnet", "10.77.5.0/24", "other", check=True)
    dy(
        "run",
        "-d",
        "--name",
        "alpha",
        "--hostname",
        "alpha",
        "--network",
        "front",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
        check=True,
    )
    dy(
        "run",
        "-d",
        "--name",
        "beta",
        "--hostname",
        "beta",
        "--network",
        "front",
        "--network-alias",
        "bee",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
        check=True,
    )
    dy("run", "-d", "--name", "gamma", "--network", "other", IMAGE, "sh", "-c", HTTPD, check=True)
    assert _wget(dy, "alpha", "http://beta/").stdout == "page-of-beta\n"
    assert _wget(dy, "beta", "http://alpha/").stdout == "page-of-alpha\n"
    assert _wget(dy, "alpha", "http://bee/").stdout == "page-of-beta\n"
    # The third, on another network, neither resolves nor reaches them.
    assert _wget(dy, "gamma", "http://alpha/", timeout=0).returncode != 0
    a_ip = dy("network", "inspect", "-f", "{{range .Containers}}{{.IPv4Address}} {{end}}", "front").stdout
    first = a_ip.split()[0].split("/")[0]
    assert _wget(dy, "gamma", f"http://{first}/", timeout=0).returncode != 0
    # Addresses live only in the networks' namespaces, never in the host's.
    host_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert first not in host_addrs and "10.77.5." not in host_addrs
    inspect = dy("network", "inspect", "front", check=True).stdout
    assert '"Name": "alpha"' in inspect and '"Name": "beta"' in inspect
    assert dy("inspect", "-f", "{{.HostConfig.NetworkMode}}", "alpha").stdout == "front\n"
    ip = dy("inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}}", "alpha").stdout.strip()
    assert ip in a_ip
    assert dy("ps", "--filter", "network=other", "--format", "{{.Names}} {{.Networks}}").stdout == "gamma other\n"


def test_stop_and_start_update_hosts(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "n", check=True)
    dy("run", "-d", "--name", "srv", "--hostname", "srv", "--network", "n", IMAGE, "sh", "-c", HTTPD, check=True)
    dy("run", "-d", "--name", "cli", "--network", "n", IMAGE, "sleep", "600", check=True)
    assert "srv" in dy("exec", "cli", "cat", "/etc/hosts").stdout
    dy("stop", "-t", "1", "srv", check=True)
    assert "srv" not in dy("exec", "cli", "cat", "/etc/hosts").stdout
    dy("start", "srv", check=True)
    assert _wget(dy, "cli", "http://srv/").stdout == "page-of-srv\n"


def test_connect_and_disconnect_a_running_container(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "n1", check=True)
    dy("run", "-d", "--name", "srv", "--hostname", "srv", "--network", "n1", IMAGE, "sh", "-c", HTTPD, check=True)
    dy("run", "-d", "--name", "cli", IMAGE, "sleep", "600", check=True)
    assert _wget(dy, "cli", "http://srv/", timeout=0).returncode != 0
    dy("network", "connect", "n1", "cli", check=True)
    assert _wget(dy, "cli", "http://srv/").stdout == "page-of-srv\n"
    r = dy("network", "connect", "n1", "cli")
    assert r.returncode == 1 and "already exists in network n1" in r.stderr
    dy("network", "disconnect", "n1", "cli", check=True)
    assert _wget(dy, "cli", "http://srv/", timeout=0).returncode != 0


def test_link_alias(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "n", check=True)
    dy("run", "-d", "--name", "db", "--hostname", "db", "--network", "n", IMAGE, "sh", "-c", HTTPD, check=True)
    dy("run", "-d", "--name", "app", "--network", "n", "--link", "db:database", IMAGE, "sleep", "600", check=True)
    assert _wget(dy, "app", "http://database/").stdout == "page-of-db\n"


def test_rm_refuses_while_in_use_and_errors(net: Dockyard) -> None:
    dy = net
    nid = dy("network", "create", "busy", check=True).stdout.strip()
    assert (
        dy("network", "create", "busy").stderr == "Error response from daemon: network with name busy already exists\n"
    )
    dy("create", "--name", "user", "--network", "busy", IMAGE, "true", check=True)
    r = dy("network", "rm", "busy")
    assert r.returncode == 1
    assert r.stderr == (
        f"Error response from daemon: error while removing network: network busy id {nid} has active endpoints\n"
        "exit status 1\n"
    )
    r = dy("network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network and cannot be removed" in r.stderr
    # Docker's words (docker.io 20.10 with dockerd --bridge=none --iptables=false).
    r = dy("network", "rm", "nosuch")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: network nosuch not found\nexit status 1\n")
    r = dy("network", "inspect", "nosuch")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error response from daemon: network nosuch not found\n")
    r = dy("network", "create", "--gateway", "10.1.1.1", "x2")
    assert (r.returncode, r.stderr) == (1, "every ip-range or gateway must have a corresponding subnet\n")
    r = dy("network", "ls", "--filter", "bogus=1")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: Invalid filter 'bogus'\n")
    r = dy("run", "--rm", "--network", "nosuch", IMAGE, "true")
    assert r.returncode == 125 and "network nosuch not found" in r.stderr
    dy("rm", "user", check=True)
    assert dy("network", "rm", "busy", check=True).stdout == "busy\n"


def test_ls_formats_and_filters(net: Dockyard) -> None:
    dy = net
    nid = dy("network", "create", "--label", "team=a", "listed", check=True).stdout.strip()
    out = dy("network", "ls", check=True).stdout.splitlines()
    assert out[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    assert [line.split()[1] for line in out[1:]] == ["bridge", "host", "listed", "none"]
    assert dy("network", "ls", "-q", "--filter", "label=team=a").stdout == nid[:12] + "\n"
    assert dy("network", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "driver=null").stdout == "none null\n"
    assert dy("network", "prune", "-f", check=True).stdout == "Deleted Networks:\nlisted\n\n"


def test_published_port_on_bridge_network(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "web", check=True)
    port = free_port()
    # httpd listens on the container's network address only: the forwarder dials that address.
    dy(
        "run",
        "-d",
        "--name",
        "webby",
        "--hostname",
        "webby",
        "--network",
        "web",
        "--ip",
        "10.89.0.77",
        "-p",
        f"{port}:80",
        IMAGE,
        "sh",
        "-c",
        HTTPD.replace("-p 80", "-p 10.89.0.77:80"),
        check=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                assert response.read() == b"page-of-webby\n"
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_dns_flags_write_resolv_conf(net: Dockyard) -> None:
    dy = net
    dy("network", "create", "n", check=True)
    r = dy(
        "run",
        "--rm",
        "--network",
        "n",
        "--dns",
        "127.0.0.1",
        "--dns-search",
        "example.internal",
        IMAGE,
        "cat",
        "/etc/resolv.conf",
        check=True,
    )
    assert r.stdout == "search example.internal\nnameserver 127.0.0.1\n"


def test_nothing_left_behind(net: Dockyard) -> None:
    dy = net
    links_before, netns_before = _host_links(), _host_netns()
    nid = dy("network", "create", "tmp", check=True).stdout.strip()
    assert f"dy-{nid[:12]}" in _host_netns()
    dy("run", "-d", "--name", "ex", "--network", "tmp", IMAGE, "sleep", "600", check=True)
    dy("run", "--rm", "--network", "tmp", IMAGE, "true", check=True)
    ns = f"dy-{nid[:12]}"
    veths = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert veths.count(" ve") == 1, veths  # the --rm container's pair is gone already
    dy("rm", "-f", "ex", check=True)
    assert dy("network", "inspect", "-f", "{{len .Containers}}", "tmp").stdout == "0\n"
    dy("network", "rm", "tmp", check=True)
    assert _host_links() == links_before
    assert _host_netns() == netns_before
