"""`dockyard compose` with real containers, bridges, veths and network namespaces (issue 16): the
notes' front-end/back-end example, names, published ports, ps/logs/exec/stop/start/restart, two
projects side by side, and `down -v` leaving nothing behind."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.runtime.conftest import IMAGE, Dockyard
from tests.servers import free_port

pytestmark = pytest.mark.privileged

HTTPD = "mkdir -p /www && echo page-of-$$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"

# The notes' example: a proxy on the front-end, an app on both, a database on the back-end only.
EXAMPLE = f"""
version: "3.8"
services:
  proxy:
    image: {IMAGE}
    hostname: proxy
    command: ["sh", "-c", "{HTTPD}"]
    ports: ["127.0.0.1:${{PORT}}:80"]
    networks: [front-end]
    depends_on: [app]
    stop_grace_period: 1s
  app:
    image: {IMAGE}
    hostname: app
    command: ["sh", "-c", "echo app says hello; {HTTPD}"]
    environment:
      GREETING: hi
    networks: [front-end, back-end]
    depends_on:
      db:
        condition: service_healthy
    stop_grace_period: 1s
  db:
    image: {IMAGE}
    hostname: db
    command: ["sh", "-c", "sleep 0.5; {HTTPD}"]
    volumes: ["data:/data"]
    networks:
      back-end:
        aliases: [database]
    healthcheck:
      # busybox wget works on loopback (it is only off loopback that Debian's static one crashes)
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 200ms
      retries: 50
    stop_grace_period: 1s
networks:
  front-end: {{}}
  back-end:
    ipam:
      config: [{{subnet: 10.89.250.0/24}}]
volumes:
  data: {{}}
"""


def _get(dy: Dockyard, container: str, host: str, timeout: float = 10) -> str:
    """The body of GET / from `host`:80 inside `container`, "" when nothing answered (through
    busybox nc: Debian's static busybox wget segfaults off loopback)."""
    script = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80"
    deadline = time.monotonic() + timeout
    while True:
        r = dy("exec", container, "sh", "-c", script)
        head, sep, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
        if r.returncode == 0 and head.startswith("HTTP/1.1 200") and sep:
            return body
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.2)


def _host_get(port: int, timeout: float = 10) -> str:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            text = data.decode().replace("\r\n", "\n")
            if text.startswith("HTTP/1.1 200"):
                return text.partition("\n\n")[2]
        except OSError:
            pass
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.2)


def _project(tmp_path: Path, text: str = EXAMPLE) -> Path:
    directory = tmp_path / "shop"
    directory.mkdir(exist_ok=True)
    (directory / "docker-compose.yml").write_text(text)
    return directory / "docker-compose.yml"


def _compose(dy: Dockyard, f: Path, project: str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return dy("compose", "-f", str(f), "-p", project, *args, **kw)  # type: ignore[arg-type]


def _host_state() -> str:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return links + netns


def test_up_the_example_then_down_leaves_nothing(net: Dockyard, tmp_path: Path) -> None:
    dy = net
    port = free_port()
    f = _project(tmp_path, EXAMPLE.replace("${PORT}", str(port)))
    before = _host_state()
    r = _compose(dy, f, "shop", "up", "-d")
    assert r.returncode == 0, r.stderr
    # depends_on: db (healthy) before app before proxy.
    created = [
        line.split()[1] for line in r.stderr.splitlines() if line.startswith("Creating shop_") and line.endswith("done")
    ]
    assert created == ["shop_db_1", "shop_app_1", "shop_proxy_1"]
    assert 'Creating network "shop_front-end"' in r.stderr and 'Creating volume "shop_data"' in r.stderr
    # A service reaches another by its name on a shared network; published port on 127.0.0.1.
    assert _get(dy, "shop_proxy_1", "app") == "page-of-app\n"
    assert _get(dy, "shop_app_1", "db") == "page-of-db\n"
    assert _get(dy, "shop_app_1", "database") == "page-of-db\n"
    assert _host_get(port) == "page-of-proxy\n"
    # The db is on the back-end only: the proxy (front-end only) neither resolves nor reaches it.
    assert _get(dy, "shop_proxy_1", "db", timeout=0) == ""
    members = dy("network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}", "shop_back-end")
    db_ip = dict(m.split("=") for m in members.stdout.split())["shop_db_1"].split("/")[0]
    assert db_ip.startswith("10.89.250.")
    assert db_ip and _get(dy, "shop_proxy_1", db_ip, timeout=0) == ""
    # ps, logs, exec.
    ps = _compose(dy, f, "shop", "ps", check=True).stdout.splitlines()
    assert ps[0].split() == ["Name", "Command", "State", "Ports"]
    assert [line.split()[0] for line in ps[2:]] == ["shop_app_1", "shop_db_1", "shop_proxy_1"]
    assert f"127.0.0.1:{port}->80/tcp" in ps[-1] and all("Up" in line for line in ps[2:])
    assert _compose(dy, f, "shop", "logs", "app", check=True).stdout == "app_1    | app says hello\n"
    r = _compose(dy, f, "shop", "exec", "-T", "app", "sh", "-c", "echo $GREETING; hostname", check=True)
    assert r.stdout == "hi\napp\n"
    assert _compose(dy, f, "shop", "exec", "-T", "app", "sh", "-c", "exit 3").returncode == 3
    labels = dy("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', "shop_app_1").stdout
    assert labels == "app\n"
    # A second `up` changes nothing.
    r = _compose(dy, f, "shop", "up", "-d", check=True)
    assert "shop_app_1 is up-to-date" in r.stderr
    # stop, start, restart.
    _compose(dy, f, "shop", "stop", check=True)
    assert dy("ps", "-q").stdout == ""
    _compose(dy, f, "shop", "start", check=True)
    assert _get(dy, "shop_proxy_1", "app") == "page-of-app\n"
    r = _compose(dy, f, "shop", "restart", "db", check=True)
    assert "Restarting shop_db_1 ... done" in r.stderr
    assert _get(dy, "shop_app_1", "db") == "page-of-db\n"
    # down -v: no container, network, bridge, veth, namespace or volume is left.
    r = _compose(dy, f, "shop", "down", "-v", check=True)
    assert "Removing volume shop_data" in r.stderr
    assert dy("ps", "-aq").stdout == ""
    assert dy("network", "ls", "-q", "--filter", "type=custom").stdout == ""
    assert dy("volume", "ls", "-q").stdout == ""
    assert _host_state() == before
    assert [p.name for p in (dy.root / "networks").iterdir()] == [".lock"]
    assert [p.name for p in (dy.root / "containers").iterdir() if p.is_dir()] == []


def test_two_projects_from_one_file_do_not_collide(net: Dockyard, tmp_path: Path) -> None:
    dy = net
    # The notes' v1 form: services at the top level, found through `links`.
    text = f"""
web:
  image: {IMAGE}
  hostname: web
  command: ["sh", "-c", "{HTTPD}"]
  stop_grace_period: 1s
client:
  image: {IMAGE}
  command: ["sleep", "600"]
  links: ["web:site"]
  stop_grace_period: 1s
"""
    f = _project(tmp_path, text)
    _compose(dy, f, "one", "up", "-d", check=True)
    _compose(dy, f, "two", "up", "-d", check=True)
    names = sorted(dy("ps", "--format", "{{.Names}}").stdout.split())
    assert names == ["one_client_1", "one_web_1", "two_client_1", "two_web_1"]
    # v1-style links through the project's default network.
    assert _get(dy, "one_client_1", "site") == "page-of-web\n"
    assert _get(dy, "two_client_1", "web") == "page-of-web\n"
    # Each project's default network holds its own containers only.
    assert _get(dy, "one_client_1", "two_web_1", timeout=0) == ""
    one = _compose(dy, f, "one", "ps", "-q", check=True).stdout.split()
    assert len(one) == 2 and set(one) & set(_compose(dy, f, "two", "ps", "-q").stdout.split()) == set()
    _compose(dy, f, "one", "down", check=True)
    assert sorted(dy("ps", "--format", "{{.Names}}").stdout.split()) == ["two_client_1", "two_web_1"]
    assert dy("network", "ls", "--format", "{{.Name}}", "--filter", "type=custom").stdout == "two_default\n"
    _compose(dy, f, "two", "down", check=True)


def test_up_attached_prefixes_logs_and_stops_on_ctrl_c(net: Dockyard, tmp_path: Path) -> None:
    dy = net
    text = f"""
services:
  talker:
    image: {IMAGE}
    command: ["sh", "-c", "echo ready; exec sleep 600"]
    stop_grace_period: 1s
    depends_on:
      once:
        condition: service_completed_successfully
  once:
    image: {IMAGE}
    command: ["echo", "done here"]
"""
    import os
    import signal
    import sys

    f = _project(tmp_path, text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "compose", "-f", str(f), "-p", "att", "up"],
        env=dy.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("talker_1  | ready" in s for s in seen):
        seen.append(proc.stdout.readline())
    while time.monotonic() < deadline and not any("att_once_1 exited with code 0" in s for s in seen):
        seen.append(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    text_out = "".join(seen) + out
    assert "once_1    | done here\n" in text_out, (text_out, err)
    assert "talker_1  | ready\n" in text_out
    assert "Gracefully stopping" in out and "Stopping att_talker_1 ... done" in err
    assert dy("ps", "-q").stdout == ""
    _compose(dy, f, "att", "down", check=True)


def test_invalid_file_errors(net: Dockyard, tmp_path: Path) -> None:
    f = _project(tmp_path, f"services:\n  web:\n    imagee: {IMAGE}\n")
    r = _compose(net, f, "bad", "up", "-d")
    assert r.returncode == 1
    assert r.stderr == (
        f"ERROR: The Compose file '{f}' is invalid because:\nUnsupported config option for services.web: 'imagee'\n"
    )
    f = _project(
        tmp_path,
        f"services:\n  web:\n    image: {IMAGE}\n    depends_on:\n      db:\n        condition: service_healthy\n"
        f"  db:\n    image: {IMAGE}\n    command: [sleep, '60']\n",
    )
    r = _compose(net, f, "bad", "up", "-d")
    assert r.returncode == 1
    assert "dependency failed to start: container for service db has no healthcheck configured" in r.stderr
    _compose(net, f, "bad", "down", "-t", "0", check=True)


def test_config_matches_docker_compose(tmp_path: Path) -> None:
    """The same file through Debian's docker-compose 1.29 and through Dockyard: the same model."""
    import os
    import sys

    tool = shutil.which("docker-compose")
    if tool is None:
        from tests.conftest import require

        require(False, "docker-compose is not installed (apt-get install docker-compose)")
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / ".env").write_text("TAG=1.36\n")
    (directory / "docker-compose.yml").write_text(
        """
version: "3.8"
services:
  web:
    image: busybox:${TAG}
    command: ["httpd", "-f"]
    ports: ["8080:80", "127.0.0.1:9090:90/udp"]
    environment: [A=1, B=two]
    networks: [front]
    depends_on: [db]
    volumes: ["./site:/www:ro", "data:/data"]
    restart: always
  db:
    image: ${DB:-redis}
    networks:
      back:
      front:
    depends_on:
      cache:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
      retries: 3
  cache:
    image: busybox
    extra_hosts: ["a:10.0.0.1"]
    labels: [team=x]
    ports: ["80", "9000-9001:9000-9001", {target: 83, published: 84}]
  worker:
    build: ./worker
    env_file: worker.env
    environment: {B: override}
    entrypoint: sh -c
    command: echo hi
    extra_hosts: {b: 10.0.0.2}
    volumes: [/anonymous]
networks:
  front: {}
  back: {}
volumes:
  data: {}
"""
    )
    (directory / "worker").mkdir()
    (directory / "worker.env").write_text("# a comment\nA=from-file\nB=from-file\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DB", "TAG", "COMPOSE_PROJECT_NAME")}
    theirs = subprocess.run([tool, "config"], cwd=directory, env=env, capture_output=True, text=True, check=True)
    ours = subprocess.run(
        [sys.executable, "-m", "dockyard", "compose", "config"],
        cwd=directory,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = yaml.safe_load(theirs.stdout)
    expected.pop("version", None)
    assert yaml.safe_load(ours.stdout) == expected


def test_build_volumes_env_file_and_recreate(net: Dockyard, tmp_path: Path) -> None:
    dy = net
    directory = tmp_path / "proj"
    (directory / "app").mkdir(parents=True)
    (directory / "app" / "Dockerfile").write_text(f"FROM {IMAGE}\nARG GREETING\nRUN echo $GREETING > /etc/greeting\n")
    (directory / "bound").mkdir()
    (directory / "bound" / "hello").write_text("hello-bind\n")
    (directory / "vars.env").write_text("FROM_FILE=from-file\n")
    script = (
        "cat /etc/greeting; cat /data/seen 2>/dev/null; echo $$FROM_FILE > /data/seen; "
        "echo $$FROM_FILE $$X; cat /bound/hello"
    )
    text = f"""
services:
  app:
    build:
      context: ./app
      args: {{GREETING: built}}
    entrypoint: ["sh", "-c"]
    command: ["{script}"]
    env_file: vars.env
    environment: {{X: ${{X_VALUE}}}}
    volumes: ["store:/data", "./bound:/bound:ro"]
volumes:
  store: {{}}
"""
    f = directory / "compose.yaml"
    f.write_text(text.replace("${X_VALUE}", "one"))
    r = _compose(dy, f, "proj", "up", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Successfully tagged proj_app" in r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("app_1  |")]
    assert lines == ["app_1  | built", "app_1  | from-file one", "app_1  | hello-bind"]
    assert "proj_app_1 exited with code 0" in r.stdout
    assert dy("images", "--format", "{{.Repository}}", "proj_app").stdout == "proj_app\n"
    # The named volume outlives `down`; a changed service is recreated.
    _compose(dy, f, "proj", "down", check=True)
    f.write_text(text.replace("${X_VALUE}", "two"))
    r = _compose(dy, f, "proj", "up", "-d", check=True)
    assert "Creating proj_app_1 ... done" in r.stderr and "Building" not in r.stderr
    _compose(dy, f, "proj", "logs", "-f", check=True, timeout=30)
    assert _compose(dy, f, "proj", "logs", "--no-log-prefix", check=True).stdout == (
        "built\nfrom-file\nfrom-file two\nhello-bind\n"
    )
    f.write_text(text.replace("${X_VALUE}", "three"))
    r = _compose(dy, f, "proj", "up", "-d", check=True)
    assert "Recreating proj_app_1 ... done" in r.stderr
    _compose(dy, f, "proj", "down", "-v", check=True)
    assert dy("volume", "ls", "-q").stdout == ""


def test_build_push_and_pull_through_a_registry(net: Dockyard, tmp_path: Path) -> None:
    from tests.conftest import require_busybox
    from tests.servers import start_registry

    dy = net
    server = start_registry(tmp_path / "registry")
    try:
        ref = f"{server.address}/demo/bb:1"
        ctx = tmp_path / "shop" / "ctx"
        ctx.mkdir(parents=True)
        shutil.copy2(require_busybox(), ctx / "busybox")
        (ctx / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "pulled"]\n'
        )
        f = _project(tmp_path, f"services:\n  one:\n    image: {ref}\n    build: ./ctx\n")
        r = _compose(dy, f, "pl", "build", check=True, timeout=120)
        assert f"Successfully tagged {ref}" in r.stderr
        dy("push", ref, check=True)
        dy("rmi", ref, check=True)
        dy("image", "prune", "-f", check=True)
        r = _compose(dy, f, "pl", "pull", check=True)
        assert f"Pulling one ({ref})..." in r.stderr
        assert dy("images", "-q", ref).stdout.strip()
        r = _compose(dy, f, "pl", "up", check=True)
        assert "Building" not in r.stderr and "one_1  | pulled\n" in r.stdout
        _compose(dy, f, "pl", "down", check=True)
    finally:
        server.stop()


def test_error_messages_are_docker_composes(tmp_path: Path) -> None:
    """Each invalid file of the unit tests' table, through Debian's docker-compose 1.29: the words
    recorded there (and which Dockyard prints) are still its own."""
    import os

    from tests.unit.test_compose_load import INVALID

    tool = shutil.which("docker-compose")
    if tool is None:
        from tests.conftest import require

        require(False, "docker-compose is not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if k != "COMPOSE_PROJECT_NAME"}
    for index, (text, message) in enumerate(INVALID):
        directory = tmp_path / f"case{index}"
        directory.mkdir()
        (directory / "docker-compose.yml").write_text(text)
        r = subprocess.run([tool, "config", "-q"], cwd=directory, env=env, capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.startswith(message), (text, r.stderr)
