"""The deployment files are valid for the tools that consume them: hadolint for the Dockerfile,
Debian's docker-compose for compose.yaml, the Kubernetes schemas (kubernetes-validate) for the
manifests, systemd-analyze for the unit; and every config file in deploy/ loads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.config import load_config
from tests.conftest import require, require_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def _venv_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    require(path is not None, f"{name} is not installed (pip install {name}-bin / kubernetes-validate)")
    assert path is not None
    return path


def _manifests() -> list[Path]:
    return sorted(KUBERNETES.rglob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_venv_tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2  # multi-stage
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert "VOLUME /var/lib/dockyard" in text
    assert "/etc/dockyard/config.yml" in text


def test_build_scripts_are_valid_shell() -> None:
    for script in ("build-base.sh", "build-image.sh"):
        result = subprocess.run(["sh", "-n", str(DEPLOY / script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_config_files_load() -> None:
    for path in (DEPLOY / "config.yml", DEPLOY / "compose" / "config-s3.yml"):
        load_config(path, {})
    assert load_config(DEPLOY / "compose" / "config-s3.yml", {}).storage.driver == "s3"


@pytest.mark.parametrize("profile", [None, "s3"])
def test_compose_file_is_valid(profile: str | None) -> None:
    compose = require_tool("docker-compose")
    args = [compose, "-f", str(DEPLOY / "compose.yaml")]
    if profile:
        args += ["--profile", profile]
    result = subprocess.run([*args, "config"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    (volume,) = services["dockyard"]["volumes"]
    assert (volume["target"] if isinstance(volume, dict) else volume.split(":")[1]) == "/var/lib/dockyard"
    assert services["dockyard"]["read_only"] is True
    if profile == "s3":
        assert {"minio", "minio-bucket", "dockyard-a", "dockyard-b", "loadbalancer"} <= set(services)
        assert (
            services["dockyard-a"]["environment"]["DOCKYARD_HTTP_SECRET"]
            == (services["dockyard-b"]["environment"]["DOCKYARD_HTTP_SECRET"])
        )


def test_kubernetes_manifests_match_the_schemas() -> None:
    tool = _venv_tool("kubernetes-validate")
    result = subprocess.run([tool, "--strict", *map(str, _manifests())], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(_manifests())


@pytest.mark.parametrize("variant", ["pvc", "s3"])
def test_kubernetes_variant(variant: str, tmp_path: Path) -> None:
    docs = {
        path.name: _load(path)
        for path in [*(KUBERNETES / "common").glob("*.yaml"), *(KUBERNETES / variant).glob("*.yaml")]
    }
    deployment = docs["deployment.yaml"]["spec"]
    assert deployment["replicas"] > 1
    pod = deployment["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    secret_keys = set(docs["secret.yaml"]["stringData"])
    assert {"htpasswd", "token.key"} <= secret_keys
    cron = docs["cronjob-gc.yaml"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert cron["args"][0] == "gc"
    assert docs["service.yaml"]["kind"] == "Service"
    if variant == "pvc":
        assert docs["persistentvolumeclaim.yaml"]["spec"]["accessModes"] == ["ReadWriteMany"]
    # The ConfigMap's config is a valid Dockyard config, with the backend the variant promises.
    config_file = tmp_path / "config.yml"
    config_file.write_text(docs["configmap.yaml"]["data"]["config.yml"])
    config = load_config(config_file, {})
    assert config.storage.driver == ("filesystem" if variant == "pvc" else "s3")
    # The drain fits inside the pod's grace period.
    assert config.http.draintimeout < pod["terminationGracePeriodSeconds"]


def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    text = (DEPLOY / "systemd" / "dockyard.service").read_text()
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=dockyard", "PrivateTmp=yes"):
        assert option in text
    # verify insists that ExecStart exists: point it at this checkout's entry point.
    unit = tmp_path / "dockyard.service"
    unit.write_text(text.replace("/opt/dockyard/bin/dockyard", str(Path(sys.executable).parent / "dockyard")))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True)
    found = re.search(r"Overall exposure level for dockyard.service: ([0-9.]+)", security.stdout)
    assert found is not None, security.stdout + security.stderr
    assert float(found.group(1)) < 2.0, security.stdout


def test_the_image_copies_every_package_the_project_installs() -> None:
    """A package added to pyproject.toml but not to the image's context would start the image with
    an ImportError: every one is copied by the Dockerfile and let through by .dockerignore."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"^include = \[(.*)\]$", pyproject, re.MULTILINE)
    assert include is not None
    packages = [name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    for package in packages:
        assert f"COPY {package}/ /src/{package}/" in dockerfile, package
        assert f"!{package}/" in dockerignore, package
