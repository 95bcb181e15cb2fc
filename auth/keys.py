"""The token server's signing key, and the key IDs and JWKs other registries look keys up by.

CNCF distribution 2.x finds the key of a token without an `x5c` chain by its `kid` header in the
certificates of its `rootcertbundle`, naming each by libtrust's key ID; 3.x can also read a JWKS
file. So the key pair lives with a self-signed certificate (for `rootcertbundle`) and a JWKS file,
and every token carries the libtrust key ID as its `kid`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

Algorithm = Literal["ES256", "RS256"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
JWKS_FILE = "jwks.json"


class KeyFileError(ValueError):
    """A key file that cannot be used (wrong type, unreadable)."""


def libtrust_kid(key: PublicKey) -> str:
    """libtrust's key ID: base32 of the first 240 bits of the SHA-256 of the DER
    SubjectPublicKeyInfo, in twelve groups of four joined by ':' (libtrust util.go keyIDFromCryptoKey)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _b64(n: int, length: int | None = None) -> str:
    data = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_jwk(key: PublicKey, kid: str) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError("only P-256 EC keys are supported (ES256)")
        nums = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(nums.x, 32),
            "y": _b64(nums.y, 32),
            "kid": kid,
            "use": "sig",
            "alg": "ES256",
        }
    nums_rsa = key.public_numbers()
    return {"kty": "RSA", "n": _b64(nums_rsa.n), "e": _b64(nums_rsa.e), "kid": kid, "use": "sig", "alg": "RS256"}


def algorithm_for(key: PublicKey | PrivateKey) -> Algorithm:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError("only P-256 EC keys are supported (ES256)")
        return "ES256"
    if key.key_size < 2048:
        raise KeyFileError("RSA keys must have at least 2048 bits")
    return "RS256"


@dataclass(frozen=True)
class SigningKey:
    private: PrivateKey
    algorithm: Algorithm
    kid: str
    certificate: x509.Certificate

    @property
    def public(self) -> PublicKey:
        return self.private.public_key()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.public, self.kid)]}


def generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def self_signed(key: PrivateKey, name: str, days: int = 3650) -> x509.Certificate:
    """A certificate for the token signing key alone: distribution's `rootcertbundle` wants one."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read token signing key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise KeyFileError(f"{path}: token signing keys must be EC P-256 or RSA")
    algorithm_for(key)
    return key


def from_key_file(path: str | os.PathLike[str], issuer: str) -> SigningKey:
    """A key given in config. Its certificate is `<key>.crt` beside it if present, else made in memory."""
    key = load_private_key(path)
    cert_path = Path(f"{path}.crt")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes()) if cert_path.exists() else self_signed(key, issuer)
    return SigningKey(key, algorithm_for(key), libtrust_kid(key.public_key()), cert)


def load_or_create(directory: str | os.PathLike[str], algorithm: Algorithm, issuer: str) -> SigningKey:
    """The key pair kept in `directory`, made on first use: key.pem (0600), cert.pem, jwks.json.

    Several worker processes may start at once: each file is written aside and then linked into
    place, which fails if another process got there first, so every process ends up with the same key.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = root / KEY_FILE
    if not key_path.exists():
        _publish(key_path, private_pem(generate(algorithm)), 0o600)
    key = load_private_key(key_path)
    if algorithm_for(key) != algorithm:
        raise KeyFileError(f"{key_path} holds an {algorithm_for(key)} key, but {algorithm} is configured")
    cert_path = root / CERT_FILE
    if not cert_path.exists():
        _publish(cert_path, self_signed(key, issuer).public_bytes(serialization.Encoding.PEM), 0o644)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.public_key() != key.public_key():
        raise KeyFileError(f"{cert_path} does not belong to {key_path}")
    signing = SigningKey(key, algorithm, libtrust_kid(key.public_key()), cert)
    jwks_path = root / JWKS_FILE
    if not jwks_path.exists():
        _publish(jwks_path, json.dumps(signing.jwks(), indent=2).encode() + b"\n", 0o644)
    return signing


def _publish(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
