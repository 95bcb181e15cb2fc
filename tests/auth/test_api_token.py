"""Token mode through the app: challenges, the token endpoint, and the registry checking tokens."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from auth.htpasswd import HtpasswdFile
from tests.auth.conftest import basic, bearer, digest_of, push_blob, token_for

ERROR_KEYS = {"code", "message"}


def challenge_of(r) -> str:
    assert r.status_code == 401, r.text
    value: str = r.headers["www-authenticate"]
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    return value


async def test_challenges_name_the_scope(make_client):
    client = make_client("token")
    r = await client.get("/v2/")
    assert challenge_of(r) == 'Bearer realm="http://registry.test/auth/token",service="registry.test"'
    r = await client.get("/v2/team-a/app/tags/list")
    assert challenge_of(r) == (
        'Bearer realm="http://registry.test/auth/token",service="registry.test",scope="repository:team-a/app:pull"'
    )
    r = await client.post("/v2/team-a/app/blobs/uploads/")
    assert 'scope="repository:team-a/app:pull,push"' in challenge_of(r)
    r = await client.delete(f"/v2/team-a/app/manifests/{digest_of(b'x')}")
    assert 'scope="repository:team-a/app:delete"' in challenge_of(r)
    r = await client.get("/v2/_catalog")
    assert 'scope="registry:catalog:*"' in challenge_of(r)
    detail = r.json()["errors"][0]["detail"]
    assert detail == [{"Type": "registry", "Name": "catalog", "Action": "*"}]


async def test_realm_from_forwarded_headers_only_when_trusted(make_client):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.lan:5000"}
    client = make_client("token")
    r = await client.get("/v2/", headers=forwarded)
    assert 'realm="http://registry.test/auth/token"' in r.headers["www-authenticate"]
    trusting = make_client("token", http__trustforwardedheaders=True)
    r = await trusting.get("/v2/", headers=forwarded)
    assert 'realm="https://registry.lan:5000/auth/token"' in r.headers["www-authenticate"]
    r = await trusting.get("/v2/", headers={"X-Forwarded-Proto": "https"})
    assert 'realm="https://registry.test/auth/token"' in r.headers["www-authenticate"]
    fixed = make_client("token", auth__token__realm="https://auth.example/token")
    r = await fixed.get("/v2/", headers=forwarded)
    assert 'realm="https://auth.example/token"' in r.headers["www-authenticate"]
    hosted = make_client("token", http__host="https://reg.example")
    r = await hosted.get("/v2/")
    assert 'realm="https://reg.example/auth/token"' in r.headers["www-authenticate"]


async def test_token_grants_the_intersection(make_client):
    client = make_client("token")
    r = await client.get(
        "/auth/token",
        params=[
            ("service", "registry.test"),
            ("scope", "repository:team-a/app:pull,push"),
            ("scope", "repository:team-b/app:pull"),
            ("scope", "repository:public/x:pull,push,delete"),
        ],
        headers=basic("alice"),
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    assert "refresh_token" not in body
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["aud"] == "registry.test" and claims["iss"] == "dockyard-test"
    assert claims["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "public/x", "actions": ["pull", "push"]},
    ]
    assert r.headers["cache-control"] == "no-store"


async def test_anonymous_token_has_only_anonymous_rights(make_client):
    client = make_client("token")
    r = await client.get(
        "/auth/token", params=[("scope", "repository:public/x:pull,push"), ("scope", "repository:team-a/x:pull")]
    )
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "public/x", "actions": ["pull"]}]


async def test_token_endpoint_refusals(make_client):
    client = make_client("token")
    r = await client.get("/auth/token", headers=basic("alice", "wrong"))
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = await client.get("/auth/token", headers=basic("nobody", "x"))
    assert r.status_code == 401
    for header in (
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic",
        "Digest abc",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Bearer abc",
    ):
        r = await client.get("/auth/token", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = await client.get("/auth/token", params={"service": "other"}, headers=basic("alice"))
    assert r.status_code == 400
    r = await client.get("/auth/token", params={"scope": "nonsense"}, headers=basic("alice"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_oauth_password_and_refresh(make_client, tmp_path):
    client = make_client("token")
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "alice-pw",
        "service": "registry.test",
        "client_id": "docker",
        "access_type": "offline",
        "scope": "repository:team-a/app:pull repository:team-b/x:pull",
    }
    r = await client.post("/auth/token", data=form)
    assert r.status_code == 200, r.text
    body = r.json()
    refresh = body["refresh_token"]
    assert body["scope"] == "repository:team-a/app:pull"
    # The registry refuses the refresh token itself.
    r2 = await client.get("/v2/team-a/app/tags/list", headers=bearer(refresh))
    assert r2.status_code == 401 and 'error="invalid_token"' in r2.headers["www-authenticate"]
    r = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "registry.test",
            "client_id": "docker",
            "scope": "repository:team-a/app:pull,push",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] == refresh
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}]
    # A new password voids refresh tokens earned with the old one.
    HtpasswdFile(tmp_path / "htpasswd", rounds=4).set_password("alice", "changed")
    r = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "registry.test"}
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
    r = await client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "garbage"})
    assert r.status_code == 401
    r = await client.post("/auth/token", data={"grant_type": "password", "username": "bob", "password": "bad"})
    assert r.status_code == 401
    r = await client.post("/auth/token", data={"grant_type": "password", "username": "bob"})
    assert r.status_code == 400
    r = await client.post("/auth/token", data={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = await client.post("/auth/token", content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = await client.post(
        "/auth/token", content=b"x" * 70000, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400


async def test_get_with_offline_token_returns_refresh_token(make_client):
    client = make_client("token")
    r = await client.get(
        "/auth/token",
        params={"service": "registry.test", "client_id": "docker", "offline_token": "true"},
        headers=basic("bob"),
    )
    assert r.status_code == 200 and r.json()["refresh_token"]
    r = await client.get("/auth/token", params={"offline_token": "true"})
    assert "refresh_token" not in r.json()  # anonymous callers have nothing to refresh


async def test_registry_accepts_and_scopes_tokens(make_client):
    client = make_client("token")
    token = await token_for(client, "alice", "repository:team-a/app:pull,push")
    r = await client.get("/v2/", headers=bearer(token))
    assert r.status_code == 200
    r = await push_blob(client, "team-a/app", b"layer-a", bearer(token))
    assert r.status_code == 201, r.text
    r = await client.get(f"/v2/team-a/app/blobs/{digest_of(b'layer-a')}", headers=bearer(token))
    assert r.status_code == 200 and r.content == b"layer-a"
    # The same token does not reach another repository.
    r = await client.get(f"/v2/team-a/other/blobs/{digest_of(b'layer-a')}", headers=bearer(token))
    assert r.status_code == 401
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="repository:team-a/other:pull"' in r.headers["www-authenticate"]
    pull_only = await token_for(client, "alice", "repository:team-a/app:pull")
    r = await client.post("/v2/team-a/app/blobs/uploads/", headers=bearer(pull_only))
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer not.a.jwt",
        "Bearer " + "a" * 30000,
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"alice:alice-pw").decode(),
        "Weird scheme",
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJkb2NreWFyZC10ZXN0In0.",
    ],
)
async def test_registry_refuses_bad_credentials_with_401(make_client, authorization):
    client = make_client("token")
    r = await client.get("/v2/team-a/app/tags/list", headers={"Authorization": authorization})
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Bearer realm=")


async def test_registry_refuses_forged_tokens(make_client):
    client = make_client("token")
    good = await token_for(client, "alice", "repository:team-a/app:pull")
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    tokens = {
        "alg none": f"{none_header}.{payload}.",
        "wrong audience": _resign(claims | {"aud": "elsewhere"}, header),
        "expired": _resign(claims | {"exp": 1000, "nbf": 900, "iat": 900}, header),
        "other key": jwt.encode(
            claims, _other_key(), algorithm="ES256", headers=json.loads(base64.urlsafe_b64decode(header + "=="))
        ),
        "tampered": header
        + "."
        + base64.urlsafe_b64encode(json.dumps(claims | {"sub": "root"}).encode()).decode().rstrip("=")
        + "."
        + signature,
    }
    for what, token in tokens.items():
        r = await client.get("/v2/team-a/app/tags/list", headers=bearer(token))
        assert r.status_code == 401, what
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED", what
        assert 'error="invalid_token"' in r.headers["www-authenticate"], what


def _other_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _resign(claims, header):
    # Signed with a fresh key under the real key's kid: the signature check must fail.
    return jwt.encode(
        claims, _other_key(), algorithm="ES256", headers=json.loads(base64.urlsafe_b64decode(header + "=="))
    )


async def test_jwks_endpoint_publishes_the_signing_key(make_client):
    client = make_client("token")
    token = await token_for(client, "alice")
    r = await client.get("/auth/jwks.json")
    assert r.status_code == 200
    (jwk,) = r.json()["keys"]
    assert jwk["kid"] == jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK.from_dict(jwk).key
    assert jwt.decode(token, key, algorithms=["ES256"], audience="registry.test")["sub"] == "alice"


async def test_failed_logins_are_rate_limited(make_client):
    client = make_client("token")
    for _ in range(5):
        r = await client.get("/auth/token", headers=basic("alice", "guess"))
        assert r.status_code == 401
    r = await client.get("/auth/token", headers=basic("alice"))
    assert r.status_code == 429
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    r = await client.post("/auth/token", data={"grant_type": "password", "username": "alice", "password": "x"})
    assert r.status_code == 429
    # Another user from the same address is limited too (the address is over the limit).
    r = await client.get("/auth/token", headers=basic("bob"))
    assert r.status_code == 429


async def test_catalog_lists_what_the_caller_may_pull(make_client):
    client = make_client("token")
    for user, repo in (("alice", "team-a/app"), ("bob", "team-b/app"), ("root", "public/base")):
        token = await token_for(client, user, f"repository:{repo}:pull,push")
        for blob in (repo.encode(), b"{}"):
            r = await push_blob(client, repo, blob, bearer(token))
            assert r.status_code == 201
        r = await client.put(
            f"/v2/{repo}/manifests/v1",
            headers=bearer(token) | {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            content=_manifest(repo.encode()),
        )
        assert r.status_code == 201, r.text
    expected = {
        "alice": ["public/base", "team-a/app"],
        "bob": ["public/base", "team-b/app"],
        None: ["public/base"],
        "root": ["public/base", "team-a/app", "team-b/app"],
    }
    for user, repos in expected.items():
        token = await token_for(client, user, "registry:catalog:*")
        r = await client.get("/v2/_catalog", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert sorted(r.json()["repositories"]) == repos, user


def _manifest(layer: bytes) -> bytes:
    config = b"{}"
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(config), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(layer), "size": len(layer)}
            ],
        }
    ).encode()


async def test_token_endpoint_401s_name_the_basic_scheme(make_client):
    """RFC 7235: a 401 carries WWW-Authenticate; the token endpoint takes Basic credentials."""
    client = make_client("token")
    refusals = [
        await client.get("/auth/token", headers=basic("alice", "wrong")),
        await client.get("/auth/token", headers=basic("nobody", "x")),
        await client.get("/auth/token", headers={"Authorization": "Basic !!!"}),
        await client.get("/auth/token", headers={"Authorization": "Bearer abc"}),
        await client.post("/auth/token", data={"grant_type": "password", "username": "alice", "password": "no"}),
        await client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "forged"}),
    ]
    for r in refusals:
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Basic realm="Dockyard Test"'


@pytest.mark.parametrize(
    "name",
    ["team-a/../team-b/x", "a/b:pull:c/d", "team-a/App", "team-a//x", "team-a/x/", "localhost:5000/team-a/x"],
)
async def test_scopes_naming_no_valid_repository_grant_nothing(make_client, name):
    """A rule's glob (`team-a/*`) matches `team-a/../team-b/x` literally; such a name is refused
    as malformed, never granted."""
    client = make_client("token")
    r = await client.get("/auth/token", params={"scope": f"repository:{name}:pull,push,delete"}, headers=basic("alice"))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_scope" and r.json()["errors"][0]["code"]
    assert "token" not in r.json()
    form = {"grant_type": "password", "username": "alice", "password": "alice-pw", "scope": f"repository:{name}:pull"}
    r = await client.post("/auth/token", data=form)
    assert r.status_code == 400 and "token" not in r.json()


async def test_guessing_from_many_addresses_never_locks_the_right_password_out(make_client):
    """Ten wrong passwords from ten addresses do not lock alice out: the right one from a new
    address gets a token (the per-user limit only slows her checks down)."""
    client = make_client("token", http__trustforwardedheaders=True, auth__loginlimit__maxdelay="0.01s")
    for i in range(10):
        r = await client.get("/auth/token", headers=basic("alice", "guess") | {"X-Forwarded-For": f"10.0.0.{i}"})
        assert r.status_code == 401
    r = await client.get("/auth/token", headers=basic("alice") | {"X-Forwarded-For": "10.0.1.1"})
    assert r.status_code == 200, r.text
    # One address guessing is still refused, whoever it names.
    for _ in range(5):
        await client.get("/auth/token", headers=basic("bob", "guess") | {"X-Forwarded-For": "10.0.2.2"})
    r = await client.get("/auth/token", headers=basic("bob") | {"X-Forwarded-For": "10.0.2.2"})
    assert r.status_code == 429
