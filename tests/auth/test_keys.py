import json
import stat
import threading

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.keys import CERT_FILE, JWKS_FILE, KEY_FILE, KeyFileError, from_key_file, libtrust_kid, load_or_create

SPEC_JWK = {  # docs/spec/auth/jwt.md's example key and its key ID
    "kty": "EC",
    "crv": "P-256",
    "x": "m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q",
    "y": "dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc",
}


def test_libtrust_kid_matches_the_spec_example():
    key = jwt.PyJWK.from_dict(SPEC_JWK).key
    assert libtrust_kid(key) == "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_created_once_with_private_modes(tmp_path, algorithm):
    key = load_or_create(tmp_path / "k", algorithm, "dockyard")
    assert key.algorithm == algorithm
    assert stat.S_IMODE((tmp_path / "k" / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    assert key.certificate.public_key() == key.public
    again = load_or_create(tmp_path / "k", algorithm, "dockyard")
    assert again.kid == key.kid
    jwks = json.loads((tmp_path / "k" / JWKS_FILE).read_text())
    assert jwks == key.jwks()
    assert jwks["keys"][0]["kid"] == key.kid
    assert libtrust_kid(jwt.PyJWK.from_dict(jwks["keys"][0]).key) == key.kid
    assert (tmp_path / "k" / CERT_FILE).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_workers_starting_together_share_one_key(tmp_path):
    kids = []
    threads = [
        threading.Thread(target=lambda: kids.append(load_or_create(tmp_path, "ES256", "d").kid)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(kids)) == 1 and len(kids) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == [CERT_FILE, JWKS_FILE, KEY_FILE]


def test_algorithm_mismatch_is_an_error(tmp_path):
    load_or_create(tmp_path, "ES256", "d")
    with pytest.raises(KeyFileError, match="ES256 key"):
        load_or_create(tmp_path, "RS256", "d")


def test_configured_key_files(tmp_path):
    path = tmp_path / "key.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    signing = from_key_file(path, "dockyard")
    assert signing.algorithm == "ES256" and signing.kid == libtrust_kid(key.public_key())
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_bytes(
        small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(KeyFileError, match="2048"):
        from_key_file(path, "dockyard")
    path.write_text("not a key")
    with pytest.raises(KeyFileError, match="PEM"):
        from_key_file(path, "dockyard")
    with pytest.raises(KeyFileError, match="cannot read"):
        from_key_file(tmp_path / "missing", "dockyard")
    p384 = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        p384.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(KeyFileError, match="P-256"):
        from_key_file(path, "dockyard")
