"""`dockyard tls selfsigned`: a small private CA and a server certificate for a LAN host name.

Docker trusts a registry's CA from `/etc/docker/certs.d/HOST:PORT/ca.crt`, so what the clients
need is the CA certificate, and what the server needs is `server.crt`/`server.key`. An existing CA
in the output directory is reused, so certificates for more host names keep the same trust root.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"


@dataclass(frozen=True)
class Written:
    directory: Path
    ca_created: bool

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def server_cert(self) -> Path:
        return self.directory / SERVER_CERT

    @property
    def server_key(self) -> Path:
        return self.directory / SERVER_KEY


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    if not (directory / CA_KEY).exists() or not (directory / CA_CERT).exists():
        return None
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / CA_KEY} is not an EC key made by dockyard")
    cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    if cert.public_key() != key.public_key():
        raise ValueError(f"{directory / CA_CERT} does not belong to {directory / CA_KEY}")
    return key, cert


def selfsigned(hosts: list[str], directory: str | os.PathLike[str], days: int = 825) -> Written:
    """Write (or reuse) the CA and write a server certificate valid for every name in `hosts`."""
    if not hosts:
        raise ValueError("at least one host name is needed")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    existing = _load_ca(out)
    if existing is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"Dockyard CA for {hosts[0]}"))
            .issuer_name(_name(f"Dockyard CA for {hosts[0]}"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(out / CA_KEY, _key_pem(ca_key), 0o600)
        _write(out / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    else:
        ca_key, ca_cert = existing
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(out / SERVER_KEY, _key_pem(key), 0o600)
    _write(out / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Written(out, existing is None)
