import base64
import datetime
import json

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from auth.keys import SigningKey, generate, libtrust_kid, public_jwk, self_signed
from auth.scopes import Scope
from auth.token import InvalidToken, KeySet, TokenIssuer, TokenVerifier, credential_stamp

NOW = 1_700_000_000


def signing_key(algorithm="ES256") -> SigningKey:
    key = generate(algorithm)
    return SigningKey(key, algorithm, libtrust_kid(key.public_key()), self_signed(key, "test"))


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return signing_key()


def issuer_for(key, now=NOW, **kw) -> TokenIssuer:
    return TokenIssuer(key, "dockyard", clock=lambda: now, **kw)


def verifier_for(keys: KeySet, now=NOW, **kw) -> TokenVerifier:
    return TokenVerifier(keys, "dockyard", "registry.test", clock=lambda: now, **kw)


def raw(claims, key, alg="ES256", headers=None) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def good_claims(**over):
    claims = {
        "iss": "dockyard",
        "sub": "alice",
        "aud": "registry.test",
        "exp": NOW + 300,
        "nbf": NOW,
        "iat": NOW,
        "jti": "x",
        "access": [{"type": "repository", "name": "a/b", "actions": ["pull"]}],
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_issue_and_verify(key):
    scopes = [Scope("repository", "team/app", ("pull", "push")), Scope("registry", "catalog", ("*",))]
    issued = issuer_for(key, expiration=600).access_token("alice", "registry.test", scopes)
    assert issued.response()["token"] == issued.response()["access_token"] == issued.token
    assert issued.response()["expires_in"] == 600
    assert issued.response()["issued_at"] == "2023-11-14T22:13:20Z"
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert payload["aud"] == "registry.test"  # a string, as distribution 2.x wants
    assert payload["exp"] - payload["nbf"] == 600 and payload["iat"] == NOW
    assert set(payload) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    claims = verifier_for(KeySet({key.kid: key.public})).verify(issued.token)
    assert claims.subject == "alice"
    assert claims.allows("repository", "team/app", "push")
    assert not claims.allows("repository", "team/app", "delete")
    assert claims.allows("registry", "catalog", "*")
    other = issuer_for(key).access_token("alice", "registry.test", [])
    assert jwt.decode(other.token, options={"verify_signature": False})["jti"] != payload["jti"]


def test_minimum_lifetime_and_anonymous(key):
    issued = issuer_for(key, expiration=5).access_token(None, "registry.test", [])
    assert issued.expires_in == 60
    claims = verifier_for(KeySet({key.kid: key.public})).verify(issued.token)
    assert claims.subject == "" and dict(claims.access) == {}


def test_rsa_tokens():
    key = signing_key("RS256")
    token = issuer_for(key).access_token("bob", "registry.test", []).token
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert verifier_for(KeySet({key.kid: key.public})).verify(token).subject == "bob"


def test_leeway(key):
    token = issuer_for(key, now=NOW - 330).access_token("a", "registry.test", []).token  # expired 30 s ago
    assert verifier_for(KeySet({key.kid: key.public}), leeway=60).verify(token).subject == "a"
    with pytest.raises(InvalidToken, match="expired"):
        verifier_for(KeySet({key.kid: key.public}), leeway=10).verify(token)


@pytest.fixture(scope="module")
def ks(key) -> KeySet:
    return KeySet({key.kid: key.public})


def check_rejected(token, ks, match):
    with pytest.raises(InvalidToken, match=match):
        verifier_for(ks).verify(token)


def test_rejects_malformed(ks):
    check_rejected("", ks, "malformed")
    check_rejected("not-a-jwt", ks, "malformed")
    check_rejected("@@@.@@@.@@@", ks, "malformed")
    check_rejected(b64(b"not json") + "." + b64(b"{}") + ".", ks, "malformed")
    check_rejected("x" * 20000, ks, "too large")


def test_rejects_alg_none(key, ks):
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(good_claims()).encode())
    check_rejected(f"{header}.{body}.", ks, "algorithm 'none'")
    header = b64(json.dumps({"alg": "None", "typ": "JWT", "kid": key.kid}).encode())
    check_rejected(f"{header}.{body}.", ks, "not accepted")


def test_rejects_hmac_with_the_public_key(key, ks):
    pem = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(good_claims()).encode())
    import hashlib
    import hmac

    sig = b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    check_rejected(f"{header}.{body}.{sig}", ks, "not accepted")


def test_rejects_algorithms_not_configured(key, ks):
    token = issuer_for(key).access_token("a", "registry.test", []).token
    with pytest.raises(InvalidToken, match="not accepted"):
        verifier_for(ks, algorithms=["RS256"]).verify(token)


def test_rejects_wrong_signature_and_unknown_keys(key, ks):
    forger = generate("ES256")
    check_rejected(raw(good_claims(), forger, headers={"kid": key.kid}), ks, "bad token signature")
    check_rejected(raw(good_claims(), forger, headers={"kid": libtrust_kid(forger.public_key())}), ks, "unknown key")
    check_rejected(raw(good_claims(), key.private), ks, "names no signing key")
    # A valid signature, then one altered byte of the payload.
    token = raw(good_claims(), key.private, headers={"kid": key.kid})
    head, _body, sig = token.split(".")
    tampered = b64(json.dumps(good_claims(sub="root")).encode())
    check_rejected(f"{head}.{tampered}.{sig}", ks, "bad token signature")
    # An RSA-signed token under the EC key's kid.
    rsa_key = generate("RS256")
    check_rejected(raw(good_claims(), rsa_key, "RS256", {"kid": key.kid}), ks, "cannot be verified|signature")


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        (good_claims(aud="other"), "another service"),
        (good_claims(aud=["other", "x"]), "another service"),
        (good_claims(iss="evil"), "untrusted issuer"),
        (good_claims(exp=None), "exp"),
        (good_claims(aud=None), "aud"),
        (good_claims(iss=None), "iss"),
        (good_claims(exp=NOW - 61), "expired"),
        (good_claims(nbf=NOW + 120), "not valid yet"),
        (good_claims(iat=NOW + 120), "issued in the future"),
        (good_claims(exp="soon"), "cannot be verified|not a number"),
        (good_claims(sub=5), "cannot be verified|sub"),
        (good_claims(access="repository:a:pull"), "not a list"),
        (good_claims(access=["x"]), "not an object"),
        (good_claims(access=[{"type": "repository", "name": "a"} | {"actions": "pull"}]), "malformed"),
        (good_claims(access=[{"type": "repository", "name": "a", "actions": [1]}]), "malformed"),
    ],
)
def test_rejects_bad_claims(key, ks, claims, match):
    check_rejected(raw(claims, key.private, headers={"kid": key.kid}), ks, match)


def test_audience_list_containing_us_is_accepted(key, ks):
    token = raw(good_claims(aud=["x", "registry.test"]), key.private, headers={"kid": key.kid})
    assert verifier_for(ks).verify(token).subject == "alice"


def test_refresh_tokens(key, ks):
    issuer = issuer_for(key)
    stamp = credential_stamp("$2y$12$hash")
    refresh = issuer.refresh_token("alice", "registry.test", stamp)
    assert issuer.read_refresh_token(refresh, "registry.test") == ("alice", stamp)
    check_rejected(refresh, ks, "another service")
    # Even under the registry's audience, a refresh token is no access token.
    forged = raw(good_claims(dockyard_refresh=stamp), key.private, headers={"kid": key.kid})
    check_rejected(forged, ks, "refresh token")
    with pytest.raises(InvalidToken):
        issuer.read_refresh_token(refresh, "other.service")
    access = issuer.access_token("alice", "registry.test#refresh", []).token
    with pytest.raises(InvalidToken, match="not a refresh token"):
        issuer.read_refresh_token(access, "registry.test")
    late = issuer_for(key, now=NOW + 31 * 86400)
    with pytest.raises(InvalidToken, match="expired"):
        late.read_refresh_token(refresh, "registry.test")


def _ca(name="Test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert, days=1):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _x5c(*certs):
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs]


def test_x5c_chain_to_a_bundle_root():
    import time

    ca_key, ca_cert = _ca()
    leaf_key, leaf_cert = _leaf(ca_key, ca_cert)
    keys = KeySet(roots=[ca_cert])
    now = int(time.time())
    claims = good_claims(exp=now + 300, nbf=now, iat=now)
    verifier = TokenVerifier(keys, "dockyard", "registry.test")
    token = raw(claims, leaf_key, headers={"x5c": _x5c(leaf_cert)})
    assert verifier.verify(token).subject == "alice"
    token = raw(claims, leaf_key, headers={"x5c": _x5c(leaf_cert, ca_cert)})
    assert verifier.verify(token).subject == "alice"
    other_key, other_ca = _ca("Other CA")
    rogue_key, rogue_cert = _leaf(other_key, other_ca)
    with pytest.raises(InvalidToken, match="trusted certificate"):
        verifier.verify(raw(claims, rogue_key, headers={"x5c": _x5c(rogue_cert)}))
    # A rogue CA with the same name as the trusted one.
    fake_key, fake_ca = _ca("Test CA")
    fake_leaf_key, fake_leaf = _leaf(fake_key, fake_ca)
    with pytest.raises(InvalidToken, match=r"trusted certificate|does not verify"):
        verifier.verify(raw(claims, fake_leaf_key, headers={"x5c": _x5c(fake_leaf)}))
    with pytest.raises(InvalidToken, match="malformed x5c"):
        verifier.verify(raw(claims, leaf_key, headers={"x5c": ["!!notbase64"]}))
    with pytest.raises(InvalidToken, match="malformed x5c"):
        verifier.verify(raw(claims, leaf_key, headers={"x5c": "abc"}))
    # Signed by another key than the certificate's.
    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(raw(claims, rogue_key, headers={"x5c": _x5c(leaf_cert)}))
    expired_key, expired_cert = _leaf(ca_key, ca_cert, days=-1)
    with pytest.raises(InvalidToken, match="validity"):
        verifier.verify(raw(claims, expired_key, headers={"x5c": _x5c(expired_cert)}))
    # The bundle's certificates are also trusted by libtrust key ID.
    assert libtrust_kid(ca_cert.public_key()) in keys.keys


def test_jwk_header_and_jwks_file(tmp_path, key):
    keys = KeySet({key.kid: key.public})
    token = raw(good_claims(), key.private, headers={"jwk": public_jwk(key.public, key.kid)})
    assert verifier_for(keys).verify(token).subject == "alice"
    other = generate("ES256")
    untrusted = raw(good_claims(), other, headers={"jwk": public_jwk(other.public_key(), "x")})
    check_rejected(untrusted, keys, "untrusted key")
    check_rejected(raw(good_claims(), other, headers={"jwk": {"kty": "EC"}}), keys, "malformed jwk")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(rsa_key.public_key(), "ext-1")]}))
    from_file = KeySet.load(jwks=str(path))
    token = raw(good_claims(), rsa_key, "RS256", {"kid": "ext-1"})
    assert verifier_for(from_file).verify(token).subject == "alice"
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
    from_bundle = KeySet.load(rootcertbundle=str(bundle))
    token = raw(good_claims(), key.private, headers={"kid": key.kid})
    assert verifier_for(from_bundle).verify(token).subject == "alice"


def test_verified_tokens_are_cached_until_they_expire(key):
    clock = [float(NOW)]
    verifier = TokenVerifier(
        KeySet({key.kid: key.public}), "dockyard", "registry.test", leeway=10, clock=lambda: clock[0], max_cached=3
    )
    token = issuer_for(key).access_token("a", "registry.test", []).token
    assert verifier.verify(token).subject == "a"
    verifier.keys = KeySet()  # a second check would now fail: the answer comes from the cache
    assert verifier.verify(token).subject == "a"
    clock[0] += 300 + 11
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    verifier.keys = KeySet({key.kid: key.public})
    clock[0] = float(NOW)
    for i in range(10):
        verifier.verify(issuer_for(key).access_token(f"u{i}", "registry.test", []).token)
    assert len(verifier._verified) <= 3
