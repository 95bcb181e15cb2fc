"""Dockyard's token server in front of CNCF distribution 2.8 (Debian's `docker-registry`).

distribution trusts the certificate Dockyard writes beside its signing key (`rootcertbundle`) and
finds the key of each token by the libtrust key ID in its `kid` header; skopeo and the Docker engine
log in at Dockyard's token endpoint and push to and pull from distribution with the tokens.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.conftest import require_tool
from tests.e2e.test_docker import build_busybox_image
from tests.imagebuild import ImageSpec, busybox_entries, layer, write_layout
from tests.servers import DockerEngine, RegistryProcess, free_port, start_registry, wait_for

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice dist pw", "bob": "bob dist pw"}
SERVICE = "distribution-e2e"
ISSUER = "dockyard-e2e"


@dataclass
class Pair:
    dockyard: RegistryProcess
    distribution: str  # 127.0.0.1:PORT


def _dockyard_config(base: Path, algorithm: str) -> Path:
    users = HtpasswdFile(base / "htpasswd", rounds=4)
    for user, password in PASSWORDS.items():
        users.set_password(user, password)
    config = {
        "auth": {
            "htpasswd": {"path": str(base / "htpasswd")},
            "token": {"service": SERVICE, "issuer": ISSUER},
            "tokenserver": {"algorithm": algorithm},
            "access": {
                "groups": {"team-a": ["alice"]},
                "rules": [
                    {"repositories": ["team-a/*"], "who": ["group:team-a"], "actions": ["pull", "push"]},
                    {"repositories": ["public/*"], "who": ["anonymous"], "actions": ["pull"]},
                ],
            },
        }
    }
    path = base / "dockyard.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(params=["ES256", "RS256"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    binary = require_tool("docker-registry")
    dockyard = start_registry(tmp_path / "dockyard-data", config=_dockyard_config(tmp_path, request.param))
    port = free_port()
    bundle = tmp_path / "dockyard-data" / "dockyard" / "token" / "cert.pem"
    assert bundle.exists()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "dist-data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {
            "token": {
                "realm": f"{dockyard.url}/auth/token",
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        },
    }
    dist_config = tmp_path / "distribution.yml"
    dist_config.write_text(yaml.safe_dump(config))
    log = open(tmp_path / "distribution.log", "wb")
    process = subprocess.Popen([binary, "serve", str(dist_config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 401, 30, "docker-registry")
        yield Pair(dockyard, f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(20)
        log.close()
        dockyard.stop()


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    require_tool("skopeo")
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)


def test_skopeo_through_distribution_with_dockyard_tokens(pair: Pair, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", ImageSpec([layer(busybox_entries(["sh"]))]), tag="v1")
    challenge = httpx.get(f"http://{pair.distribution}/v2/team-a/app/tags/list").headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{pair.dockyard.url}/auth/token",service="{SERVICE}"')
    alice = f"alice:{PASSWORDS['alice']}"
    pushed = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        alice,
        f"oci:{tmp_path / 'layout'}:v1",
        f"docker://{pair.distribution}/team-a/app:v1",
    )
    assert pushed.returncode == 0, pushed.stderr
    tags = skopeo("list-tags", "--tls-verify=false", "--creds", alice, f"docker://{pair.distribution}/team-a/app")
    assert tags.returncode == 0, tags.stderr
    assert '"v1"' in tags.stdout
    bob = f"bob:{PASSWORDS['bob']}"
    denied = skopeo("inspect", "--tls-verify=false", "--creds", bob, f"docker://{pair.distribution}/team-a/app:v1")
    assert denied.returncode != 0
    wrong = skopeo(
        "inspect", "--tls-verify=false", "--creds", "alice:wrong", f"docker://{pair.distribution}/team-a/app:v1"
    )
    assert wrong.returncode != 0
    # A token from another key is refused by distribution: it really checks the signature.
    r = httpx.get(
        f"{pair.dockyard.url}/auth/token",
        params={"service": SERVICE, "scope": "repository:team-a/app:pull"},
        auth=("alice", PASSWORDS["alice"]),
    )
    token = r.json()["token"]
    ok = httpx.get(f"http://{pair.distribution}/v2/team-a/app/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["tags"] == ["v1"]
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[::-1]}"
    r = httpx.get(f"http://{pair.distribution}/v2/team-a/app/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_docker_through_distribution_with_dockyard_tokens(
    pair: Pair, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    ref = f"{pair.distribution}/team-a/web:v1"
    build_busybox_image(docker_engine, tmp_path / "ctx", ref)
    login = subprocess.run(
        ["docker", "login", pair.distribution, "-u", "alice", "--password-stdin"],
        env=docker_engine.env,
        input=PASSWORDS["alice"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert login.returncode == 0, login.stderr
    try:
        docker_engine.docker("push", ref)
        docker_engine.docker("rmi", ref)
        docker_engine.docker("pull", ref)
        other = f"{pair.distribution}/elsewhere/web:v1"
        docker_engine.docker("tag", ref, other)
        refused = docker_engine.docker("push", other, check=False)
        assert refused.returncode != 0
        assert "denied" in refused.stderr or "unauthorized" in refused.stderr
        docker_engine.docker("rmi", ref, other)
    finally:
        docker_engine.docker("logout", pair.distribution)
