"""Several upstreams under prefixes beside the registry's own repositories, containerd's `?ns=`,
access rules on mirrored names, a Dockyard upstream (multi-arch index, referrers, tag lists), and
upstreams that need credentials: htpasswd and the token flow."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from auth.htpasswd import HtpasswdFile
from tests.conftest import require_tool
from tests.faultproxy import fault_proxy
from tests.imagebuild import ImageSpec, busybox_entries, file, layer, push, write_layout
from tests.mirror.conftest import UPSTREAM_USER, Upstream, distribution, push_image, running_mirror, skopeo
from tests.servers import RegistryProcess, free_port, start_registry, wait_for

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice mirror pw")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}


@pytest.fixture
def dockyard_upstream(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = start_registry(tmp_path / "dockyard-upstream")
    yield server
    server.stop()


def _push_referrer(registry: RegistryProcess, repo: str, subject_digest: str, subject_size: int) -> str:
    empty = b"{}"
    empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
    r = httpx.post(f"{registry.url}/v2/{repo}/blobs/uploads/?digest={empty_digest}", content=empty)
    assert r.status_code == 201, r.text
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2}],
            "subject": {"mediaType": OCI_INDEX, "digest": subject_digest, "size": subject_size},
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    r = httpx.put(
        f"{registry.url}/v2/{repo}/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    return digest


def _mirror_auth(base: Path) -> dict[str, object]:
    users = HtpasswdFile(base / "mirror-htpasswd", rounds=4)
    users.set_password(*ALICE)
    return {
        "htpasswd": {"path": str(base / "mirror-htpasswd")},
        "access": {
            "rules": [
                {"repositories": ["dist/*", "library/*", "other/*"], "who": ["anonymous"], "actions": ["pull"]},
                {"repositories": ["team/*", "dist/*"], "who": ["user:alice"], "actions": ["pull", "push"]},
                {"repositories": ["dy/*"], "who": ["user:alice"], "actions": ["pull"]},
            ]
        },
    }


def test_prefixed_upstreams_beside_local_repositories(
    upstream: Upstream, dockyard_upstream: RegistryProcess, tmp_path: Path
) -> None:
    busybox = push_image(tmp_path, upstream, "library/busybox", "1", ImageSpec([layer(busybox_entries(["sh"]))]))
    other = push_image(tmp_path, upstream, "other/tool", "v2", ImageSpec([layer([file("tool", b"tool")])]))
    specs = [
        ImageSpec([layer([file("arch", b"amd64")])], architecture="amd64"),
        ImageSpec([layer([file("arch", b"arm64")])], architecture="arm64", variant="v8"),
    ]
    layout = tmp_path / "multi"
    multi = write_layout(layout, specs, tag="v1")
    push(layout, "v1", f"{dockyard_upstream.address}/team2/multi:v1", multi=True)
    assert multi.index is not None
    index_digest = "sha256:" + hashlib.sha256(multi.index).hexdigest()
    referrer = _push_referrer(dockyard_upstream, "team2/multi", index_digest, len(multi.index))
    proxy = {
        "upstreams": [
            {"prefix": "dist", "remoteurl": upstream.proxy.url, "default": True},
            {"prefix": "dy", "remoteurl": dockyard_upstream.url},
        ]
    }
    with running_mirror(tmp_path, proxy, auth=_mirror_auth(tmp_path)) as mirror:
        v2 = f"{mirror.url}/v2"
        # Anonymous pulls of the public mirrored names, by prefix and through the default upstream.
        r = httpx.get(f"{v2}/dist/library/busybox/manifests/1", headers=ACCEPT)
        assert r.status_code == 200 and r.content == busybox.manifest
        r = httpx.get(f"{v2}/library/busybox/manifests/1", headers=ACCEPT)
        assert r.status_code == 200 and r.content == busybox.manifest
        # containerd's ?ns= names the upstream by host, for a name with no prefix.
        r = httpx.get(f"{v2}/other/tool/manifests/v2", params={"ns": upstream.proxy.address}, headers=ACCEPT)
        assert r.status_code == 200 and r.content == other.manifest
        r = httpx.get(f"{v2}/other/tool/blobs/{other.layers[0].digest}", params={"ns": upstream.proxy.address})
        assert r.status_code == 200 and r.content == other.layers[0].blob
        r = httpx.get(f"{v2}/dist/library/busybox/tags/list")
        assert r.json() == {"name": "dist/library/busybox", "tags": ["1"]}

        # Access rules hold for mirrored names: dy/* needs a login.
        r = httpx.get(f"{v2}/dy/team2/multi/manifests/v1", headers=ACCEPT)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        creds = f"{ALICE[0]}:{ALICE[1]}"
        skopeo(
            "copy", "--all", "--src-tls-verify=false", "--src-creds", creds,
            f"docker://{mirror.address}/dy/team2/multi:v1", f"oci:{tmp_path / 'multi-out'}:v1",
        )  # fmt: skip
        out_index = json.loads((tmp_path / "multi-out" / "index.json").read_text())
        assert out_index["manifests"][0]["digest"] == index_digest
        r = httpx.get(f"{v2}/dy/team2/multi/referrers/{index_digest}", auth=ALICE)
        assert r.status_code == 200
        assert [m["digest"] for m in r.json()["manifests"]] == [referrer]

        # Local repositories stay pushable (with a login); mirrored ones refuse pushes.
        local = write_layout(tmp_path / "local", ImageSpec([layer([file("mine", b"mine")])]), tag="v1")
        refused = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'local'}:v1", f"docker://{mirror.address}/team/app:v1",
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0  # anonymous
        skopeo(
            "copy", "--dest-tls-verify=false", "--dest-creds", creds,
            f"oci:{tmp_path / 'local'}:v1", f"docker://{mirror.address}/team/app:v1",
        )  # fmt: skip
        r = httpx.get(f"{v2}/team/app/manifests/v1", headers=ACCEPT, auth=ALICE)
        assert r.status_code == 200 and r.content == local.manifest
        r = httpx.post(f"{v2}/dist/library/busybox/blobs/uploads/", auth=ALICE)
        assert r.status_code == 405 and r.json()["errors"][0]["code"] == "UNSUPPORTED"
        catalog = httpx.get(f"{v2}/_catalog", auth=ALICE).json()["repositories"]
        assert "team/app" in catalog and "dist/library/busybox" in catalog


def test_htpasswd_upstream_needs_the_mirrors_credentials(tmp_path: Path) -> None:
    with distribution(tmp_path / "upstream", htpasswd=True) as address, fault_proxy(address) as proxy:
        up = Upstream(address, proxy, f"{UPSTREAM_USER[0]}:{UPSTREAM_USER[1]}")
        image = push_image(tmp_path, up, "private/app", "v1", ImageSpec([layer([file("secret", b"s")])]))
        with_creds = {"remoteurl": proxy.url, "username": UPSTREAM_USER[0], "password": UPSTREAM_USER[1]}
        with running_mirror(tmp_path, with_creds, log={"level": "debug"}) as mirror:
            r = httpx.get(f"{mirror.url}/v2/private/app/manifests/v1", headers=ACCEPT)
            assert r.status_code == 200 and r.content == image.manifest
            r = httpx.get(f"{mirror.url}/v2/private/app/blobs/{image.layers[0].digest}")
            assert r.status_code == 200 and r.content == image.layers[0].blob
            assert UPSTREAM_USER[1] not in mirror.logs()
        with running_mirror(tmp_path, {"remoteurl": proxy.url}) as anonymous:
            r = httpx.get(f"{anonymous.url}/v2/private/app/manifests/v1", headers=ACCEPT)
            assert r.status_code == 403
            error = r.json()["errors"][0]
            assert error["code"] == "DENIED" and "credentials" in error["message"]


TOKEN_SERVICE = "mirror-upstream"


def test_token_auth_upstream(tmp_path: Path) -> None:
    """distribution with Docker token auth, Dockyard's token server issuing: the mirror follows the
    Bearer challenge to the realm with its credentials, and gets only what they allow."""
    binary = require_tool("docker-registry")
    users = HtpasswdFile(tmp_path / "token-htpasswd", rounds=4)
    users.set_password(*UPSTREAM_USER)
    users.set_password("bob", "bob pw")
    token_config = tmp_path / "token.yml"
    token_config.write_text(
        yaml.safe_dump(
            {
                "auth": {
                    "htpasswd": {"path": str(tmp_path / "token-htpasswd")},
                    "token": {"service": TOKEN_SERVICE, "issuer": "mirror-tests"},
                    "tokenserver": {},
                    "access": {
                        "rules": [
                            {
                                "repositories": ["team-a/*"],
                                "who": [f"user:{UPSTREAM_USER[0]}"],
                                "actions": ["pull", "push"],
                            }
                        ]
                    },
                }
            }
        )
    )
    issuer = start_registry(tmp_path / "issuer", config=token_config)
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "dist-data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {
            "token": {
                "realm": f"{issuer.url}/auth/token",
                "service": TOKEN_SERVICE,
                "issuer": "mirror-tests",
                "rootcertbundle": str(tmp_path / "issuer" / "dockyard" / "token" / "cert.pem"),
            }
        },
    }
    (tmp_path / "dist.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [binary, "serve", str(tmp_path / "dist.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"http://{address}/v2/", timeout=2).status_code == 401, 30, "docker-registry")
        up = Upstream(address, None, f"{UPSTREAM_USER[0]}:{UPSTREAM_USER[1]}")  # type: ignore[arg-type]
        image = push_image(tmp_path, up, "team-a/app", "v1", ImageSpec([layer([file("t", b"token")])]))
        proxy = {"remoteurl": f"http://{address}", "username": UPSTREAM_USER[0], "password": UPSTREAM_USER[1]}
        with running_mirror(tmp_path, proxy) as mirror:
            skopeo(
                "copy", "--src-tls-verify=false", f"docker://{mirror.address}/team-a/app:v1", f"oci:{tmp_path / 'o'}:v1"
            )
            assert (
                json.loads((tmp_path / "o" / "index.json").read_text())["manifests"][0]["digest"]
                == image.manifest_digest
            )
            assert UPSTREAM_USER[1] not in mirror.logs()
            assert f"account={UPSTREAM_USER[0]}" not in mirror.logs()
        with running_mirror(tmp_path, {**proxy, "username": "bob", "password": "bob pw"}) as bob:
            r = httpx.get(f"{bob.url}/v2/team-a/app/manifests/v1", headers=ACCEPT)
            assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    finally:
        process.terminate()
        process.wait(20)
        issuer.stop()
