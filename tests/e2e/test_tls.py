"""`http.tls` against a real `dockyard serve` on a real port: mutual TLS (`clientcas`) with skopeo's
`--cert-dir` and curl, the lowest protocol version (`minimumtls`) and the TLS 1.2 cipher suites
(`ciphersuites`) with clients forcing an older version or another suite. Certificates are made
here: a server CA, a client CA, and a stranger CA whose certificates must be refused."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import require_tool
from tests.imagebuild import ImageSpec, file, layer, write_layout
from tests.servers import RegistryProcess, free_port, start_registry

pytestmark = pytest.mark.e2e


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(ca: Authority, cn: str, server: bool, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.crt`/`<stem>.key` signed by `ca`; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class PKI:
    base: Path
    server_ca: Path
    server_cert: Path
    server_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.server_ca))
        if cert is not None:
            context.load_cert_chain(str(cert), str(key))
        return context

    def cert_dir(self, directory: Path, cert: Path | None, key: Path | None) -> Path:
        """A containers-certs.d style directory: the server's CA, and a client pair if given."""
        directory.mkdir()
        (directory / "ca.crt").write_bytes(self.server_ca.read_bytes())
        if cert is not None and key is not None:
            (directory / "client.cert").write_bytes(cert.read_bytes())
            (directory / "client.key").write_bytes(key.read_bytes())
        return directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    base = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, stranger_ca = make_ca("server CA"), make_ca("client CA"), make_ca("stranger CA")
    (base / "server-ca.crt").write_bytes(server_ca.pem())
    (base / "client-ca.crt").write_bytes(client_ca.pem())
    server_cert, server_key = issue(server_ca, "127.0.0.1", True, base, "server")
    client_cert, client_key = issue(client_ca, "builder", False, base, "client")
    stranger_cert, stranger_key = issue(stranger_ca, "builder", False, base, "stranger")
    return PKI(
        base,
        base / "server-ca.crt",
        server_cert,
        server_key,
        base / "client-ca.crt",
        client_cert,
        client_key,
        stranger_cert,
        stranger_key,
    )


def serve(tmp_path: Path, pki: PKI, verify: ssl.SSLContext, workers: int = 1, **tls: object) -> RegistryProcess:
    config = tmp_path / "config.yml"
    section = {"certificate": str(pki.server_cert), "key": str(pki.server_key), **tls}
    config.write_text(yaml.safe_dump({"http": {"tls": section}}))
    return start_registry(tmp_path / "data", config=config, scheme="https", verify=verify, workers=workers)


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def mtls(
    pki: PKI, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RegistryProcess]:
    # With several workers each process builds its own TLS context: every one must require the certificate.
    tmp_path = tmp_path_factory.mktemp("mtls")
    client = pki.client_context(pki.client_cert, pki.client_key)
    server = serve(tmp_path, pki, client, workers=request.param, clientcas=[str(pki.client_ca)])
    yield server
    server.stop()


def handshake(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A full handshake and one request; raises if the server refuses (TLS 1.3 reports a refused
    client certificate after the handshake, at the first read)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
    conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = conn.recv(64)
    if not answer.startswith(b"HTTP/1.1 200"):
        conn.close()
        raise ConnectionError(f"no HTTP answer: {answer!r}")
    return conn


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    require_tool("curl")
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args], capture_output=True, text=True
    )


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_client_cas(mtls: RegistryProcess, pki: PKI) -> None:
    url = f"{mtls.url}/v2/"
    ok = curl("--cacert", str(pki.server_ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key), url)
    assert ok.returncode == 0 and ok.stdout == "200", ok.stderr
    anonymous = curl("--cacert", str(pki.server_ca), url)
    assert anonymous.returncode != 0 and anonymous.stdout == "000", anonymous
    stranger = curl(
        "--cacert", str(pki.server_ca), "--cert", str(pki.stranger_cert), "--key", str(pki.stranger_key), url
    )
    assert stranger.returncode != 0 and stranger.stdout == "000", stranger
    # The same from Python's TLS client: the refusal is at the TLS layer, before any HTTP.
    for _ in range(4):  # new connections, spread over the workers
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            handshake(mtls.port, pki.client_context())
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            handshake(mtls.port, pki.client_context(pki.stranger_cert, pki.stranger_key))
        handshake(mtls.port, pki.client_context(pki.client_cert, pki.client_key)).close()


def test_skopeo_cert_dir_presents_the_client_certificate(mtls: RegistryProcess, pki: PKI, tmp_path: Path) -> None:
    require_tool("skopeo")
    write_layout(tmp_path / "in", ImageSpec([layer([file("etc/motd", b"mutual\n")])]), tag="v1")
    good = pki.cert_dir(tmp_path / "certs-good", pki.client_cert, pki.client_key)
    none = pki.cert_dir(tmp_path / "certs-none", None, None)
    ref = f"docker://{mtls.address}/tls/app:v1"

    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)

    pushed = skopeo("copy", "--dest-cert-dir", str(good), f"oci:{tmp_path / 'in'}:v1", ref)
    assert pushed.returncode == 0, pushed.stderr
    inspected = skopeo("inspect", "--cert-dir", str(good), ref)
    assert inspected.returncode == 0, inspected.stderr
    refused = skopeo("inspect", "--cert-dir", str(none), ref)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr.lower() or "tls" in refused.stderr.lower(), refused.stderr


def test_minimum_tls_13_refuses_a_tls_12_client(pki: PKI, tmp_path: Path) -> None:
    server = serve(tmp_path, pki, pki.client_context(), minimumtls="tls1.3")
    try:
        old = pki.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            handshake(server.port, old)
        conn = handshake(server.port, pki.client_context())
        assert conn.version() == "TLSv1.3"
        conn.close()
        refused = curl("--cacert", str(pki.server_ca), "--tls-max", "1.2", f"{server.url}/v2/")
        assert refused.returncode != 0 and refused.stdout == "000"
        assert curl("--cacert", str(pki.server_ca), "--tlsv1.3", f"{server.url}/v2/").stdout == "200"
    finally:
        server.stop()


def test_cipher_suites_are_enforced_for_tls_12(pki: PKI, tmp_path: Path) -> None:
    server = serve(tmp_path, pki, pki.client_context(), ciphersuites=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"])
    try:

        def tls12(ciphers: str) -> ssl.SSLContext:
            context = pki.client_context()
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
            return context

        with pytest.raises(ssl.SSLError):
            handshake(server.port, tls12("ECDHE-ECDSA-AES128-GCM-SHA256"))
        conn = handshake(server.port, tls12("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"))
        cipher = conn.cipher()
        assert cipher is not None and cipher[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
        conn.close()
    finally:
        server.stop()


def test_bad_tls_settings_stop_the_start(pki: PKI, tmp_path: Path) -> None:
    import sys

    from tests.servers import ROOT

    cases = {
        "ciphersuites": ({"ciphersuites": ["TLS_MADE_UP"]}, "http.tls.ciphersuites[0]"),
        "minimumtls": ({"minimumtls": "tls1.0"}, "http.tls.minimumtls"),
        "clientcas": ({"clientcas": [str(tmp_path / "missing.pem")]}, "http.tls.clientcas[0]"),
    }
    for name, (extra, key) in cases.items():
        config = tmp_path / f"{name}.yml"
        section = {"certificate": str(pki.server_cert), "key": str(pki.server_key), **extra}
        config.write_text(yaml.safe_dump({"http": {"tls": section}}))
        result = subprocess.run(
            [sys.executable, "-m", "dockyard", "serve", "--workers", "1", "--port", str(free_port()), str(config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode == 2, (name, result.stderr)
        assert key in result.stderr and "Traceback" not in result.stderr, (name, result.stderr)
