"""htpasswd mode through the app, and team isolation in both modes."""

from __future__ import annotations

import base64

import pytest

from tests.auth.conftest import basic, bearer, digest_of, push_blob, token_for


async def test_base_challenges_with_basic(make_client):
    client = make_client("htpasswd")
    r = await client.get("/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="Dockyard Test"'
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = await client.get("/v2/", headers=basic("alice"))
    assert r.status_code == 200


async def test_rules_apply(make_client):
    client = make_client("htpasswd")
    r = await push_blob(client, "team-a/app", b"a", basic("alice"))
    assert r.status_code == 201
    r = await push_blob(client, "team-b/app", b"a", basic("alice"))
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"
    r = await client.delete(f"/v2/team-a/app/blobs/{digest_of(b'a')}", headers=basic("alice"))
    assert r.status_code in (202, 405), r.text  # allowed by the rules (405 if deletes are off)
    r = await push_blob(client, "team-b/app", b"a", basic("root"))
    assert r.status_code == 201  # the admin


async def test_anonymous_pull_of_public_but_not_push(make_client):
    client = make_client("htpasswd")
    assert (await push_blob(client, "public/base", b"pub", basic("carol"))).status_code == 201
    r = await client.get(f"/v2/public/base/blobs/{digest_of(b'pub')}")
    assert r.status_code == 200 and r.content == b"pub"
    r = await client.post("/v2/public/base/blobs/uploads/")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")
    r = await client.get("/v2/team-a/app/tags/list")
    assert r.status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic",
        "Bearer abc",
        "NTLM xyz",
        "Basic " + base64.b64encode(b"alice:wrong").decode(),
        "Basic " + base64.b64encode(b"\xff:x").decode(),
    ],
)
async def test_bad_credentials_get_401(make_client, authorization):
    client = make_client("htpasswd")
    r = await client.get("/v2/public/base/tags/list", headers={"Authorization": authorization})
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"] == 'Basic realm="Dockyard Test"'


async def test_rate_limited_per_address_and_user(make_client):
    client = make_client("htpasswd")
    for _ in range(5):
        assert (await client.get("/v2/", headers=basic("bob", "guess"))).status_code == 401
    r = await client.get("/v2/", headers=basic("bob"))
    assert r.status_code == 429
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(r.headers["retry-after"]) >= 1
    # Behind a trusted proxy the client address comes from X-Forwarded-For.
    proxied = make_client("htpasswd", http__trustforwardedheaders=True)
    for i in range(5):
        r = await proxied.get("/v2/", headers=basic(f"user{i}", "guess") | {"X-Forwarded-For": "10.0.0.7"})
        assert r.status_code == 401
    r = await proxied.get("/v2/", headers=basic("alice") | {"X-Forwarded-For": "10.0.0.7, 10.0.0.1"})
    assert r.status_code == 429
    r = await proxied.get("/v2/", headers=basic("alice") | {"X-Forwarded-For": "10.0.0.8"})
    assert r.status_code == 200


async def test_catalog_is_filtered(make_client):
    client = make_client("htpasswd")
    for user, repo in (("alice", "team-a/app"), ("bob", "team-b/app"), ("carol", "public/x")):
        assert (await push_blob(client, repo, b"l", basic(user))).status_code == 201
        r = await client.put(
            f"/v2/{repo}/manifests/v1",
            content=_manifest(),
            headers=basic(user) | {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
    r = await client.get("/v2/_catalog", headers=basic("alice"))
    assert sorted(r.json()["repositories"]) == ["public/x", "team-a/app"]
    r = await client.get("/v2/_catalog", headers=basic("bob"))
    assert sorted(r.json()["repositories"]) == ["public/x", "team-b/app"]


def _manifest() -> bytes:
    import json

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(b"l"), "size": 1},
            "layers": [],
        }
    ).encode()


class Caller:
    """Credentials for one user, fetched the way a client would for each request's scope."""

    def __init__(self, client, mode: str, user: str) -> None:
        self.client, self.mode, self.user = client, mode, user

    async def headers(self, *scopes: str) -> dict[str, str]:
        if self.mode == "htpasswd":
            return basic(self.user)
        return bearer(await token_for(self.client, self.user, *scopes))


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
async def test_two_teams_are_isolated(make_client, mode):
    client = make_client(mode)
    alice, bob = Caller(client, mode, "alice"), Caller(client, mode, "bob")
    secret = b"team-a secret layer"
    digest = digest_of(secret)
    r = await push_blob(client, "team-a/app", secret, await alice.headers("repository:team-a/app:pull,push"))
    assert r.status_code == 201

    # bob cannot read team-a's blob, list its tags, or push into it.
    h = await bob.headers("repository:team-a/app:pull")
    assert (await client.get(f"/v2/team-a/app/blobs/{digest}", headers=h)).status_code in (401, 403)
    assert (await client.head(f"/v2/team-a/app/blobs/{digest}", headers=h)).status_code in (401, 403)
    assert (await client.get("/v2/team-a/app/tags/list", headers=h)).status_code in (401, 403)
    h = await bob.headers("repository:team-a/app:pull,push")
    assert (await push_blob(client, "team-a/app", b"bob was here", h)).status_code in (401, 403)
    r = await client.delete(f"/v2/team-a/app/blobs/{digest}", headers=await bob.headers("repository:team-a/app:delete"))
    assert r.status_code in (401, 403)

    # A mount from team-a into bob's repository falls back to an ordinary upload: no blob leaks.
    h = await bob.headers("repository:team-b/app:pull,push", "repository:team-a/app:pull")
    r = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": digest, "from": "team-a/app"}, headers=h)
    assert r.status_code == 202, r.text
    assert "/blobs/uploads/" in r.headers["location"]
    r = await client.get(f"/v2/team-b/app/blobs/{digest}", headers=await bob.headers("repository:team-b/app:pull"))
    assert r.status_code == 404

    # alice, who may pull team-a, can mount into a repository she may push to.
    h = await alice.headers("repository:public/x:pull,push", "repository:team-a/app:pull")
    r = await client.post("/v2/public/x/blobs/uploads/", params={"mount": digest, "from": "team-a/app"}, headers=h)
    assert r.status_code == 201, r.text

    # And the reverse: alice cannot touch team-b.
    r = await push_blob(client, "team-b/app", b"x", await bob.headers("repository:team-b/app:pull,push"))
    assert r.status_code == 201
    h = await alice.headers("repository:team-b/app:pull")
    assert (await client.get(f"/v2/team-b/app/blobs/{digest_of(b'x')}", headers=h)).status_code in (401, 403)


async def test_guessing_one_user_from_many_addresses_does_not_lock_them_out(make_client):
    client = make_client("htpasswd", http__trustforwardedheaders=True, auth__loginlimit__maxdelay="0.01s")
    for i in range(12):
        r = await client.get("/v2/", headers=basic("bob", "guess") | {"X-Forwarded-For": f"10.1.0.{i}"})
        assert r.status_code == 401
    r = await client.get("/v2/", headers=basic("bob") | {"X-Forwarded-For": "10.1.9.9"})
    assert r.status_code == 200, r.text
