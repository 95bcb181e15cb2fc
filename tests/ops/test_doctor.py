"""`dockyard doctor` against real registries (plain and TLS) and broken setups: each problem is
reported with a fix, and the exit status says whether anything failed."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auth.tls import selfsigned
from registry.config import Config, load_config
from registry.doctor import Finding, Thresholds, check_certificate_file, check_clock, diagnose
from tests.servers import ROOT, free_port, start_registry


def _config(root: Path, **env: str) -> Config:
    return load_config(None, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root), **env})


def _levels(findings: list[Finding], check: str) -> set[str]:
    return {f.level for f in findings if f.check == check}


@pytest.mark.e2e
async def test_a_healthy_registry(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data")
    try:
        config = _config(tmp_path / "data", REGISTRY_STORAGE_DELETE_ENABLED="true")
        findings = await diagnose(config, server.url)
        assert [f for f in findings if f.level == "fail"] == []
        for check in ("storage", "api", "ready", "clock", "disk"):
            assert _levels(findings, check) == {"ok"}, findings
        # the command: exit 0 and a readable report
        env = {**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path / "data")}
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "dockyard", "doctor", "--url", server.url],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 problem(s)" in result.stdout and "ok   storage" in result.stdout
    finally:
        server.stop()


async def test_unwritable_storage_and_no_server(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = _config(blocker / "data")
    findings = await diagnose(config, f"http://127.0.0.1:{free_port()}")
    storage = [f for f in findings if f.check == "storage"]
    assert storage[0].level == "fail" and "chown" in storage[0].fix
    reachable = [f for f in findings if f.check == "reachable"]
    assert reachable[0].level == "fail" and "dockyard serve" in reachable[0].fix

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dockyard", "doctor", "--url", f"http://127.0.0.1:{free_port()}"],
        cwd=ROOT,
        env={**os.environ, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(blocker / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "FAIL storage" in result.stdout and "fix: " in result.stdout


def test_clock_skew() -> None:
    config = load_config(None, {})
    now = float(int(time.time()))  # the Date header has whole seconds
    header = email.utils.formatdate(now + 600, usegmt=True)
    (finding,) = check_clock(header, now, config, Thresholds())
    assert finding.level == "fail" and "600" in finding.message and "NTP" in finding.fix
    (finding,) = check_clock(email.utils.formatdate(now + 1, usegmt=True), now, config, Thresholds())
    assert finding.level == "ok"
    # with bearer tokens, the verifier's leeway is what matters
    tokens = load_config(None, {"DOCKYARD_AUTH_TOKEN_LEEWAY": "120s", "DOCKYARD_AUTH_TOKEN_REALM": "https://x/token"})
    (finding,) = check_clock(email.utils.formatdate(now + 60, usegmt=True), now, tokens, Thresholds())
    assert finding.level == "warn"
    assert check_clock(None, now, config, Thresholds())[0].level == "warn"


def _expired_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("old.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "old.crt", directory / "old.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_certificate_files(tmp_path: Path) -> None:
    soon = selfsigned(["registry.example"], tmp_path / "soon", days=5)
    config = _config(
        tmp_path,
        DOCKYARD_HTTP_TLS_CERTIFICATE=str(soon.server_cert),
        DOCKYARD_HTTP_TLS_KEY=str(soon.server_key),
        DOCKYARD_HTTP_HOST="https://registry.example:5000",
    )
    findings = check_certificate_file(config, "https://127.0.0.1:5000", Thresholds())
    messages = {(f.level, f.message.split(" (")[0].rsplit(" ", 1)[-1]) for f in findings}
    assert ("warn", "days") in {(f.level, f.message.rsplit(" ", 1)[-1]) for f in findings}  # expires in 5 days
    assert any(f.level == "fail" and "not valid for 127.0.0.1" in f.message for f in findings), messages
    assert not any("registry.example (" in f.message for f in findings if f.level == "fail")

    old_cert, old_key = _expired_certificate(tmp_path)
    expired = _config(tmp_path, DOCKYARD_HTTP_TLS_CERTIFICATE=str(old_cert), DOCKYARD_HTTP_TLS_KEY=str(old_key))
    findings = check_certificate_file(expired, "https://old.example", Thresholds())
    assert any(f.level == "fail" and "expired" in f.message for f in findings)

    mismatched = _config(
        tmp_path, DOCKYARD_HTTP_TLS_CERTIFICATE=str(old_cert), DOCKYARD_HTTP_TLS_KEY=str(soon.server_key)
    )
    findings = check_certificate_file(mismatched, "https://old.example", Thresholds())
    assert any(f.level == "fail" and "does not belong" in f.message for f in findings)


@pytest.mark.e2e
async def test_a_tls_registry(tmp_path: Path) -> None:
    certs = selfsigned(["127.0.0.1", "localhost"], tmp_path / "certs")
    env = {"DOCKYARD_HTTP_TLS_CERTIFICATE": str(certs.server_cert), "DOCKYARD_HTTP_TLS_KEY": str(certs.server_key)}
    server = start_registry(tmp_path / "data", env=env, scheme="https", verify=str(certs.ca_cert))
    try:
        config = _config(tmp_path / "data", REGISTRY_STORAGE_DELETE_ENABLED="true", **env)
        findings = await diagnose(config, server.url, verify=str(certs.ca_cert))
        assert [f for f in findings if f.level == "fail"] == []
        assert _levels(findings, "tls") == {"ok"}
        # Without the CA, the doctor says how clients come to trust it.
        untrusted = await diagnose(config, server.url)
        (tls,) = [f for f in untrusted if f.check == "tls" and f.level == "fail"]
        assert "certs.d" in tls.fix
    finally:
        server.stop()


async def test_warnings_about_settings(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", DOCKYARD_HTTP_ADDR="0.0.0.0:5000", DOCKYARD_GC_GRACEPERIOD="1m")
    findings = await diagnose(config, f"http://127.0.0.1:{free_port()}", Thresholds(free_bytes=1 << 60))
    text = " ".join(f.message for f in findings if f.level == "warn")
    assert "no authentication" in text and "/metrics is open" in text
    assert "gc.graceperiod" in text and "storage.delete.enabled" in text
    assert _levels(findings, "disk") == {"warn"}
