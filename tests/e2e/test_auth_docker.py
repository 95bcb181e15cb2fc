"""Token auth over HTTPS with the real Docker engine and skopeo.

The registry runs `dockyard serve` with a certificate from `dockyard tls selfsigned`, users made
with `dockyard user add` and the built-in token server. The engine reaches it under a name that
does not resolve, through a CONNECT proxy (tests/auth/connect_proxy.py): a name resolving into
127.0.0.0/8 would make Docker skip certificate checks, and we want to see it trust our CA from
`/etc/docker/certs.d/HOST:PORT/ca.crt`, which the fixture creates and removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.auth.connect_proxy import connect_proxy
from tests.conftest import require_root, require_tool
from tests.servers import ROOT, DockerEngine, RegistryProcess, free_port, start_dockerd, start_registry

pytestmark = pytest.mark.e2e

HOST = "dockyard-e2e.test"
UNTRUSTED = "untrusted-e2e.test"  # the same server under a name with no CA in certs.d
PASSWORDS = {"alice": "alice e2e pw", "bob": "bob e2e pw"}
CERTS_D = Path("/etc/docker/certs.d")
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def dockyard(*args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class Setup:
    registry: RegistryProcess
    engine: DockerEngine
    certs: Path
    address: str  # HOST:PORT, as Docker sees it
    mode: str  # "token" or "htpasswd"

    def login(self, user: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "login", self.address, "-u", user, "--password-stdin"],
            env=self.engine.env,
            input=password,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _write_config(base: Path, port: int, mode: str) -> Path:
    certs = base / "certs"
    dockyard("tls", "selfsigned", "--host", HOST, "--host", "127.0.0.1", "--out", str(certs))
    htpasswd = base / "htpasswd"
    for user, password in PASSWORDS.items():
        dockyard("user", "add", user, "--password-stdin", "--file", str(htpasswd), stdin=password + "\n")
    config = {
        "http": {"tls": {"certificate": str(certs / "server.crt"), "key": str(certs / "server.key")}},
        "auth": {
            "htpasswd": {"path": str(htpasswd)},
            "access": {
                "groups": {"team-a": ["alice"], "team-b": ["bob"]},
                "rules": [
                    {"repositories": ["team-a/*"], "who": ["group:team-a"], "actions": ["pull", "push"]},
                    {"repositories": ["team-b/*"], "who": ["group:team-b"], "actions": ["pull", "push"]},
                    {"repositories": ["public/*"], "who": ["anonymous"], "actions": ["pull"]},
                    {"repositories": ["public/*"], "who": ["user:alice"], "actions": ["push"]},
                ],
            },
        },
    }
    if mode == "token":
        config["auth"]["token"] = {"service": f"{HOST}:{port}", "issuer": "dockyard-e2e"}
        config["auth"]["tokenserver"] = {"path": "/auth/token"}
    path = base / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module", params=["token", "htpasswd"])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    require_root()
    for tool in ("dockerd", "docker"):
        require_tool(tool)
    base = tmp_path_factory.mktemp("auth-docker")
    port = free_port()
    config = _write_config(base, port, request.param)
    certs = base / "certs"
    registry = start_registry(base / "data", config=config, port=port, scheme="https", verify=str(certs / "ca.crt"))
    address = f"{HOST}:{port}"
    cert_dir = CERTS_D / address
    made_certs_d = not CERTS_D.exists()
    try:
        routes = {address: ("127.0.0.1", port), f"{UNTRUSTED}:{port}": ("127.0.0.1", port)}
        with connect_proxy(routes) as proxy:
            cert_dir.mkdir(parents=True, exist_ok=False)
            shutil.copy(certs / "ca.crt", cert_dir / "ca.crt")
            saved = {k: os.environ.get(k) for k in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy")}
            os.environ.update({"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": ""})
            os.environ.pop("https_proxy", None)
            try:
                engine = start_dockerd(base / "dockerd")
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            try:
                yield Setup(registry, engine, certs, address, request.param)
            finally:
                engine.stop()
    finally:
        shutil.rmtree(cert_dir, ignore_errors=True)
        if made_certs_d:
            with contextlib.suppress(OSError):
                CERTS_D.rmdir()
        registry.stop()
        logs = registry.logs()
        for password in PASSWORDS.values():
            assert password not in logs


def build_image(engine: DockerEngine, context: Path, tag: str, text: str) -> None:
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        f'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo {text} > /greeting"]\n'
        'CMD ["/bin/busybox", "cat", "/greeting"]\n'
    )
    engine.docker("build", "-q", "-t", tag, str(context))


def test_docker_login_push_pull_over_https(setup: Setup, tmp_path: Path) -> None:
    docker, reg = setup.engine.docker, setup.address
    # Not logged in: the push is refused.
    build_image(setup.engine, tmp_path / "a", f"{reg}/team-a/app:v1", "team-a")
    refused = docker("push", f"{reg}/team-a/app:v1", check=False)
    assert refused.returncode != 0
    assert any(m in refused.stderr for m in ("denied", "unauthorized", "no basic auth credentials"))

    untrusted = subprocess.run(
        ["docker", "login", f"{UNTRUSTED}:{setup.registry.port}", "-u", "alice", "--password-stdin"],
        env=setup.engine.env,
        input=PASSWORDS["alice"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr or "x509" in untrusted.stderr

    wrong = setup.login("alice", "not the password")
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr.lower()
    right = setup.login("alice", PASSWORDS["alice"])
    assert right.returncode == 0, right.stderr
    assert "Login Succeeded" in right.stdout
    stored = json.loads((Path(setup.engine.env["DOCKER_CONFIG"]) / "config.json").read_text())
    if setup.mode == "token":
        # The login kept the refresh token (offline_token=true), not the password.
        assert "identitytoken" in stored["auths"][reg]
    else:
        assert reg in stored["auths"]

    pushed = docker("push", f"{reg}/team-a/app:v1")
    assert "digest: sha256:" in pushed.stdout
    docker("rmi", f"{reg}/team-a/app:v1")
    docker("pull", f"{reg}/team-a/app:v1")
    ran = docker("run", "--rm", "--network", "none", f"{reg}/team-a/app:v1")
    assert ran.stdout.strip() == "team-a"

    # The rules keep alice out of team-b.
    docker("tag", f"{reg}/team-a/app:v1", f"{reg}/team-b/app:v1")
    forbidden = docker("push", f"{reg}/team-b/app:v1", check=False)
    assert forbidden.returncode != 0
    assert "denied" in forbidden.stderr

    # A public image, pushed by alice, then pulled by nobody in particular.
    docker("tag", f"{reg}/team-a/app:v1", f"{reg}/public/base:v1")
    docker("push", f"{reg}/public/base:v1")
    out = docker("logout", reg)
    assert "Removing login credentials" in out.stdout
    stored = json.loads((Path(setup.engine.env["DOCKER_CONFIG"]) / "config.json").read_text())
    assert reg not in stored.get("auths", {})

    docker("rmi", f"{reg}/public/base:v1", f"{reg}/team-a/app:v1", f"{reg}/team-b/app:v1")
    if setup.mode == "htpasswd":
        # Docker sends nothing without credentials to a registry that challenged with Basic ("no basic
        # auth credentials"), so anonymous rules serve plain HTTP clients here; Docker users need token mode.
        ca = str(setup.certs / "ca.crt")
        url = setup.registry.url
        r = httpx.get(f"{url}/v2/public/base/manifests/v1", verify=ca, headers={"Accept": MANIFEST_TYPES})
        assert r.status_code == 200
        assert httpx.get(f"{url}/v2/team-a/app/manifests/v1", verify=ca).status_code == 401
        assert httpx.post(f"{url}/v2/public/base/blobs/uploads/", verify=ca).status_code == 401
        return
    pulled = docker("pull", f"{reg}/public/base:v1")
    assert "Downloaded newer image" in pulled.stdout or "Pull complete" in pulled.stdout
    private = docker("pull", f"{reg}/team-a/app:v1", check=False)
    assert private.returncode != 0
    docker("tag", f"{reg}/public/base:v1", f"{reg}/public/base:v2")
    anonymous_push = docker("push", f"{reg}/public/base:v2", check=False)
    assert anonymous_push.returncode != 0
    assert "denied" in anonymous_push.stderr
    docker("rmi", f"{reg}/public/base:v1", f"{reg}/public/base:v2")


def test_bob_logs_in_and_stays_in_his_team(setup: Setup, tmp_path: Path) -> None:
    docker, reg = setup.engine.docker, setup.address
    assert setup.login("bob", PASSWORDS["bob"]).returncode == 0
    try:
        build_image(setup.engine, tmp_path / "b", f"{reg}/team-b/tool:v1", "team-b")
        docker("push", f"{reg}/team-b/tool:v1")
        docker("tag", f"{reg}/team-b/tool:v1", f"{reg}/team-a/tool:v1")
        refused = docker("push", f"{reg}/team-a/tool:v1", check=False)
        assert refused.returncode != 0 and "denied" in refused.stderr
        docker("rmi", f"{reg}/team-b/tool:v1", f"{reg}/team-a/tool:v1")
        docker("pull", f"{reg}/team-b/tool:v1")
        docker("rmi", f"{reg}/team-b/tool:v1")
    finally:
        docker("logout", reg)


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)


def test_skopeo_with_creds(setup: Setup, tmp_path: Path) -> None:
    require_tool("skopeo")
    # skopeo resolves the name itself, so it goes to the address the certificate also names.
    reg = f"127.0.0.1:{setup.registry.port}"
    certs = tmp_path / "certs.d"
    certs.mkdir()
    shutil.copy(setup.certs / "ca.crt", certs / "ca.crt")
    alice = f"alice:{PASSWORDS['alice']}"
    bob = f"bob:{PASSWORDS['bob']}"
    ok = _skopeo("inspect", "--cert-dir", str(certs), "--creds", alice, f"docker://{reg}/team-a/app:v1")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Name"] == f"{reg}/team-a/app"
    copied = _skopeo(
        "copy",
        "--src-cert-dir",
        str(certs),
        "--dest-cert-dir",
        str(certs),
        "--src-creds",
        alice,
        "--dest-creds",
        alice,
        f"docker://{reg}/team-a/app:v1",
        f"docker://{reg}/team-a/copy:v1",
    )
    assert copied.returncode == 0, copied.stderr
    tags = _skopeo("list-tags", "--cert-dir", str(certs), "--creds", alice, f"docker://{reg}/team-a/copy")
    assert json.loads(tags.stdout)["Tags"] == ["v1"]
    denied = _skopeo("inspect", "--cert-dir", str(certs), "--creds", bob, f"docker://{reg}/team-a/app:v1")
    assert denied.returncode != 0
    wrong = _skopeo("inspect", "--cert-dir", str(certs), "--creds", "alice:nope", f"docker://{reg}/team-a/app:v1")
    assert wrong.returncode != 0
    assert "401" in wrong.stderr or "unauthorized" in wrong.stderr.lower()
    pushed = _skopeo(
        "copy",
        "--src-cert-dir",
        str(certs),
        "--dest-cert-dir",
        str(certs),
        "--src-creds",
        alice,
        "--dest-creds",
        bob,
        f"docker://{reg}/team-a/app:v1",
        f"docker://{reg}/team-a/bob-was-here:v1",
    )
    assert pushed.returncode != 0
    # Without the CA, TLS verification fails: the server really is on HTTPS with our certificate.
    untrusted = _skopeo("inspect", "--creds", alice, f"docker://{reg}/team-a/app:v1")
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr


def test_https_challenges(setup: Setup) -> None:
    url = setup.registry.url
    ca = str(setup.certs / "ca.crt")
    r = httpx.get(f"{url}/v2/", verify=ca)
    assert r.status_code == 401
    if setup.mode == "htpasswd":
        assert r.headers["www-authenticate"] == 'Basic realm="Registry Realm"'
        assert httpx.get(f"{url}/v2/", verify=ca, auth=("alice", PASSWORDS["alice"])).status_code == 200
        return
    assert r.headers["www-authenticate"].startswith(
        f'Bearer realm="https://127.0.0.1:{setup.registry.port}/auth/token"'
    )
    r = httpx.get(f"{url}/auth/token", params={"scope": "repository:public/base:pull"}, verify=ca)
    assert r.status_code == 200
    r = httpx.get(f"{url}/auth/jwks.json", verify=ca)
    assert r.json()["keys"][0]["kty"] == "EC"
