"""The UI over plain HTTP against a real server: what each page shows, who sees what, and the
session and CSRF rules. The browser tests (test_browser.py) drive the same pages in chromium."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
import yaml

from registry.config import ConfigError, load_config
from registry.ui.checks import check_ui
from tests.servers import start_registry
from tests.ui.conftest import PASSWORDS, Served
from tests.ui.images import (
    APP_LAYER,
    BASE_LAYER,
    OCI_MANIFEST,
    SBOM_TYPE,
    SIGNATURE_TYPE,
    digest_of,
    push_image,
    put_manifest,
)

pytestmark = pytest.mark.e2e
HTML = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page holds no form token"
    return found.group(1)


def login(client: httpx.Client, user: str) -> httpx.Response:
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200
    return client.post(
        "/login", data={"csrf": csrf_of(page.text), "username": user, "password": PASSWORDS[user], "next": "/"}
    )


def tag_exists(served: Served, name: str, tag: str) -> bool:
    r = httpx.get(f"{served.url}/v2/{name}/tags/list", auth=("admin", PASSWORDS["admin"]))
    return r.status_code == 200 and tag in (r.json()["tags"] or [])


def test_home_lists_repositories_with_counts_and_sizes(open_registry: Served) -> None:
    r = httpx.get(f"{open_registry.url}/", headers=HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<title>Test Yard</title>" in r.text
    row = re.search(r'<a href="/r/team/app">team/app</a></th>\s*<td class="num">(\d+)</td>', r.text)
    assert row and row.group(1) == "3"
    assert 'href="/r/team/multi"' in r.text
    # Filtering is on the server too (the script only fetches these pages).
    filtered = httpx.get(f"{open_registry.url}/", params={"q": "multi"}, headers=HTML).text
    assert 'href="/r/team/multi"' in filtered and 'href="/r/team/app"' not in filtered
    # The storage summary counts every blob once, as the store holds them.
    stored = list((open_registry.server.root / "docker/registry/v2/blobs").rglob("data"))
    storage = r.text.split('id="storage"')[1].split("</dl>")[0]
    assert f"<dt>Blobs</dt><dd>{len(stored)}</dd>" in storage
    total = sum(p.stat().st_size for p in stored)
    assert f"<dd>{total / 1024:.1f} KiB</dd>" in storage
    # Security headers: nothing runs but our own files.
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_repository_page_shows_tags_digests_sizes_and_pull_commands(open_registry: Served) -> None:
    fx = open_registry.fixture
    text = httpx.get(f"{open_registry.url}/r/team/app", headers=HTML).text
    assert re.findall(r'href="/r/team/app/-/manifest/([^"]+)">', text) == ["0.9", "1.0", "latest"]
    assert f'title="{fx.app.digest}"' in text
    size = len(fx.app.config) + len(BASE_LAYER) + len(APP_LAYER)
    assert f"{size / 1024:.1f} KiB" in text
    assert "linux/amd64" in text and "2026-11-30 10:20 UTC" in text
    # Signed or not: 1.0 (and latest, the same manifest) has a signature and an SBOM, 0.9 nothing.
    referrers = re.findall(r'<td data-label="Referrers">([^<]*)</td>', text)
    assert referrers == ["none", "SBOM, signature", "SBOM, signature"]
    host = open_registry.server.address
    assert f'value="docker pull {host}/team/app:latest"' in text
    assert f'value="dockyard pull {host}/team/app:latest"' in text
    multi = httpx.get(f"{open_registry.url}/r/team/multi", headers=HTML).text
    assert "linux/amd64, linux/arm64" in multi


def test_repository_page_pages_and_sorts(open_registry: Served) -> None:
    by_name = httpx.get(f"{open_registry.url}/r/team/app", params={"sort": "-name"}, headers=HTML).text
    assert re.findall(r'href="/r/team/app/-/manifest/([^"]+)">', by_name) == ["latest", "1.0", "0.9"]
    pushed = httpx.get(f"{open_registry.url}/r/team/app", params={"sort": "pushed"}, headers=HTML).text
    order = re.findall(r'href="/r/team/app/-/manifest/([^"]+)">', pushed)
    assert sorted(order) == ["0.9", "1.0", "latest"] and order.index("1.0") < order.index("0.9")
    only = httpx.get(f"{open_registry.url}/r/team/app", params={"q": "0.9"}, headers=HTML).text
    assert re.findall(r'href="/r/team/app/-/manifest/([^"]+)">', only) == ["0.9"]


def test_manifest_page_shows_config_history_layers_referrers_and_raw_json(open_registry: Served) -> None:
    fx = open_registry.fixture
    text = httpx.get(f"{open_registry.url}/r/team/app/-/manifest/1.0", headers=HTML).text
    for shown in (
        '<code>["/bin/server"]</code>',
        '<code>["--port", "8080"]</code>',
        "/srv",
        "8080/tcp",
        "MODE=production",
    ):
        assert shown in text, shown
    assert "org.opencontainers.image.source=https://example.invalid/app" in text
    # History: three steps, the ENV step made no layer.
    assert "ADD rootfs.tar /" in text and "ENV MODE=production" in text and "COPY server /bin/server" in text
    layers = re.findall(r'href="/r/team/app/-/blob/(sha256:[0-9a-f]+)\?manifest=', text)
    assert layers == [digest_of(BASE_LAYER), digest_of(APP_LAYER)]
    # Referrers, grouped by artifactType, each linked.
    assert f"<h3>{SBOM_TYPE}</h3>" in text and f"<h3>{SIGNATURE_TYPE}</h3>" in text
    assert f'href="/r/team/app/-/manifest/{fx.signature}"' in text
    assert f'href="/r/team/app/-/manifest/{fx.sbom}"' in text
    assert "&#34;schemaVersion&#34;: 2" in text  # the raw manifest, pretty-printed
    assert "&#34;history&#34;" in text  # the raw config


def test_index_page_lists_children_per_platform(open_registry: Served) -> None:
    text = httpx.get(f"{open_registry.url}/r/team/multi/-/manifest/latest", headers=HTML).text
    rows = re.findall(r'<th scope="row">([^<]+)</th>\s*<td><a href="/r/team/multi/-/manifest/(sha256:[0-9a-f]+)"', text)
    assert [platform for platform, _ in rows] == ["linux/amd64", "linux/arm64"]
    child = httpx.get(f"{open_registry.url}/r/team/multi/-/manifest/{rows[1][1]}", headers=HTML).text
    assert "linux/arm64" in child and "Layers" in child


def test_layer_page_and_download(open_registry: Served) -> None:
    fx = open_registry.fixture
    layer = digest_of(APP_LAYER)
    text = httpx.get(
        f"{open_registry.url}/r/team/app/-/blob/{layer}", params={"manifest": fx.app.digest}, headers=HTML
    ).text
    assert "COPY server /bin/server" in text and f"{len(APP_LAYER)} bytes" in text
    r = httpx.get(f"{open_registry.url}/r/team/app/-/blob/{layer}/download")
    assert r.status_code == 200 and r.content == APP_LAYER
    # A blob the repository does not hold is not served, even if another repository has it.
    r = httpx.get(f"{open_registry.url}/r/team/multi/-/blob/{layer}/download")
    assert r.status_code == 404


def test_unknown_pages_answer_404_with_the_error_body_to_api_clients(open_registry: Served) -> None:
    r = httpx.get(f"{open_registry.url}/r/team/nothing")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    r = httpx.get(f"{open_registry.url}/r/team/app/-/manifest/nope", headers=HTML)
    assert r.status_code == 404 and "<h1>Not found</h1>" in r.text
    r = httpx.get(f"{open_registry.url}/r/team/app/-/blob/sha256:zz")
    assert r.status_code == 404 and r.json()["errors"]


def test_delete_needs_the_form_token(open_registry: Served) -> None:
    url = open_registry.url
    old = open_registry.fixture.app_old
    with httpx.Client(base_url=url) as api:
        put_manifest(api, "team/app", "scratch", old.body, OCI_MANIFEST)
    with httpx.Client(base_url=url, headers=HTML) as client:
        confirm = client.get("/r/team/app/-/delete", params={"reference": "scratch"})
        assert confirm.status_code == 200
        token = csrf_of(confirm.text)
        # Without the token, with another session's token, from another site: refused, nothing deleted.
        assert client.post("/r/team/app/-/delete", data={"reference": "scratch"}).status_code == 403
        with httpx.Client(base_url=url) as other:
            other_page = other.get("/r/team/app/-/delete", params={"reference": "scratch"}, headers=HTML)
            other_token = csrf_of(other_page.text)
        refused = client.post("/r/team/app/-/delete", data={"reference": "scratch", "csrf": other_token})
        assert refused.status_code == 403
        cross = client.post(
            "/r/team/app/-/delete", data={"reference": "scratch", "csrf": token}, headers={"Origin": "http://evil.test"}
        )
        assert cross.status_code == 403
        assert "scratch" in httpx.get(f"{url}/v2/team/app/tags/list").json()["tags"]
        done = client.post(
            "/r/team/app/-/delete", data={"reference": "scratch", "csrf": token}, headers={"Origin": url}
        )
        assert done.status_code == 303 and done.headers["location"] == "/r/team/app?deleted=scratch"
    assert "scratch" not in httpx.get(f"{url}/v2/team/app/tags/list").json()["tags"]
    # The manifest stays, by digest and by its other tag.
    assert httpx.get(f"{url}/v2/team/app/manifests/{old.digest}").status_code == 200
    assert httpx.get(f"{url}/v2/team/app/manifests/0.9").status_code == 200


def test_delete_confirmation_names_what_goes_and_what_stays(open_registry: Served) -> None:
    fx = open_registry.fixture
    text = httpx.get(f"{open_registry.url}/r/team/app/-/delete", params={"reference": "latest"}, headers=HTML).text
    goes = text.split('id="goes"')[1].split("</ul>")[0]
    stays = text.split('id="stays"')[1].split("</ul>")[0]
    assert "<strong>latest</strong>" in goes
    assert fx.app.digest in stays and "<strong>1.0</strong>" in stays
    by_digest = httpx.get(f"{open_registry.url}/r/team/app/-/delete", params={"reference": fx.app.digest}, headers=HTML)
    goes = by_digest.text.split('id="goes"')[1].split("</ul>")[0]
    stays = by_digest.text.split('id="stays"')[1].split("</ul>")[0]
    assert "<strong>1.0</strong>" in goes and "<strong>latest</strong>" in goes and fx.app.digest in goes
    # The base layer is also 0.9's: it stays shared; the application layer is this image's own.
    assert digest_of(BASE_LAYER)[:19] in stays and digest_of(BASE_LAYER)[:19] not in goes
    assert digest_of(APP_LAYER)[:19] in goes and digest_of(APP_LAYER)[:19] not in stays


def test_anonymous_visitors_see_only_what_anonymous_pulls_allow(auth_registry: Served) -> None:
    home = httpx.get(f"{auth_registry.url}/", headers=HTML)
    assert "public/tools" in home.text
    assert "team/app" not in home.text and "team/multi" not in home.text
    private = httpx.get(f"{auth_registry.url}/r/team/app", headers=HTML)
    missing = httpx.get(f"{auth_registry.url}/r/team/none", headers=HTML)
    assert private.status_code == missing.status_code == 404

    def same(text: str) -> str:
        return re.sub(r'name="csrf-token" content="[^"]+"', "", text)  # each visit is a new session

    assert same(private.text.replace("team/app", "X")) == same(missing.text.replace("team/none", "X"))
    for path in ("/r/team/app/-/manifest/1.0", f"/r/team/app/-/blob/{digest_of(APP_LAYER)}/download"):
        assert httpx.get(f"{auth_registry.url}{path}").status_code == 404
    # No totals over the whole store for those who may not see all of it.
    assert 'id="storage"' not in home.text
    # No delete buttons for anonymous pulls.
    assert "Delete" not in httpx.get(f"{auth_registry.url}/r/public/tools", headers=HTML).text


def test_login_session_cookie_and_logout(auth_registry: Served) -> None:
    with httpx.Client(base_url=auth_registry.url, headers=HTML) as client:
        page = client.get("/login")
        wrong = client.post("/login", data={"csrf": csrf_of(page.text), "username": "reader", "password": "nope"})
        assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
        without_token = client.post("/login", data={"username": "reader", "password": PASSWORDS["reader"]})
        assert without_token.status_code == 403
        before = client.cookies.get("dockyard_session")
        r = login(client, "reader")
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
        assert client.cookies.get("dockyard_session") != before  # a new session on login
        home = client.get("/").text
        assert "team/app" in home and "Signed in as <strong>reader</strong>" in home
        assert 'id="storage"' not in home
        # reader may pull, not delete: no button, and the delete itself is refused.
        repo = client.get("/r/team/app").text
        assert "Delete" not in repo
        refused = client.post("/r/team/app/-/delete", data={"reference": "1.0", "csrf": csrf_of(repo)})
        assert refused.status_code == 403
        assert tag_exists(auth_registry, "team/app", "1.0")
        client.post("/logout", data={"csrf": csrf_of(home)})
        assert "team/app" not in client.get("/").text


def test_users_see_delete_only_where_they_may(auth_registry: Served) -> None:
    with httpx.Client(base_url=auth_registry.url, headers=HTML) as client:
        assert login(client, "admin").status_code == 303
        assert 'aria-label="Delete tag 1.0"' in client.get("/r/team/app").text
        assert 'id="storage"' in client.get("/").text  # an admin sees the store's totals
    with httpx.Client(base_url=auth_registry.url, headers=HTML) as client:
        login(client, "pusher")  # push brings pull, not delete
        text = client.get("/r/team/app").text
        assert "team/app" in text and "Delete" not in text


def test_a_forged_or_tampered_cookie_is_anonymous(auth_registry: Served) -> None:
    with httpx.Client(base_url=auth_registry.url, headers=HTML) as client:
        login(client, "admin")
        value = client.cookies["dockyard_session"]
        body, mac = value.split(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    r = httpx.get(f"{auth_registry.url}/", headers=HTML, cookies={"dockyard_session": forged})
    assert "team/app" not in r.text


def test_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    from auth.tls import selfsigned

    certs = selfsigned(["127.0.0.1"], tmp_path / "certs")
    env = {"DOCKYARD_HTTP_TLS_CERTIFICATE": str(certs.server_cert), "DOCKYARD_HTTP_TLS_KEY": str(certs.server_key)}
    server = start_registry(tmp_path / "data", env=env, scheme="https", verify=str(certs.ca_cert))
    try:
        r = httpx.get(f"{server.url}/", headers=HTML, verify=str(certs.ca_cert))
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
    finally:
        server.stop()


def test_ui_path_moves_it_and_enabled_false_removes_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"ui": {"path": "/ui/"}}))
    server = start_registry(tmp_path / "data", config=config)
    try:
        assert httpx.get(f"{server.url}/ui/", headers=HTML).status_code == 200
        assert httpx.get(f"{server.url}/ui", headers=HTML).headers["location"] == "/ui/"
        assert httpx.get(f"{server.url}/", headers=HTML).status_code == 404
        assert 'href="/ui/static/ui.css' in httpx.get(f"{server.url}/ui/", headers=HTML).text
    finally:
        server.stop()
    server = start_registry(tmp_path / "data2", env={"DOCKYARD_UI_ENABLED": "false"})
    try:
        r = httpx.get(f"{server.url}/", headers=HTML)
        assert r.status_code == 404 and r.json()["errors"]
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/v2", "/v2/ui", "/metrics", "/healthz/x", "ui", "/a b", "/x//y"])
def test_ui_path_may_not_take_the_registry_s_own_paths(path: str) -> None:
    with pytest.raises(ConfigError, match=r"ui\.path"):
        check_ui(load_config(None, {"DOCKYARD_UI_PATH": path}))


def test_ui_path_may_not_take_a_moved_metrics_path() -> None:
    config = load_config(None, {"DOCKYARD_UI_PATH": "/stats", "DOCKYARD_METRICS_PATH": "/stats"})
    with pytest.raises(ConfigError, match=r"ui\.path"):
        check_ui(config)


@pytest.mark.parametrize("value", ["soon", "0s", "-5m"])
def test_a_bad_session_lifetime_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"ui\.sessionlifetime"):
        check_ui(load_config(None, {"DOCKYARD_UI_SESSIONLIFETIME": value}))


def test_serve_with_workers_refuses_a_bad_ui_path_before_starting(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.servers import ROOT

    env = {**os.environ, "DOCKYARD_UI_PATH": "/v2/ui", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--port", "0", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "ui.path" in done.stderr


ODD_REQUESTS = [
    ("GET", "/r/%00", None),
    ("GET", "/r/team/app/-/manifest/..%2F..%2Fx", None),
    ("GET", "/r/team/app/-/manifest/sha256:zzz", None),
    ("GET", "/r/team/app/-/manifest/" + "a" * 300, None),
    ("GET", "/r/team/app/-/blob/sha256:abc/download", None),
    ("GET", "/r/team/app/-/blob/md5:abc", None),
    ("GET", "/r/team/app?page=99999999999999999999&sort=bogus", None),
    ("GET", "/r/team/app?page=-3&q=%ff%fe", None),
    ("GET", "/r/team/app/-/delete", None),
    ("GET", "/r/team/app/-/delete?reference=sha256:" + "0" * 64, None),
    ("GET", "/r/UPPER/case", None),
    ("POST", "/login", b"x" * 100_000),
    ("POST", "/r/team/app/-/delete", b"\xff\xfe=\x00"),
    ("POST", "/", b""),
    ("GET", "/static/../config.py", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ODD_REQUESTS)
def test_odd_requests_never_fail_the_server(open_registry: Served, method: str, path: str, body: bytes | None) -> None:
    r = httpx.request(method, f"{open_registry.url}{path}", content=body, headers=HTML)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert httpx.get(f"{open_registry.url}/v2/team/app/tags/list").status_code == 200


def test_read_only_mode_offers_no_delete(tmp_path: Path) -> None:
    server = start_registry(tmp_path / "data")
    with httpx.Client(base_url=server.url) as api:
        push_image(api, "team/app", "1.0", (APP_LAYER,))
    server.stop()
    server = start_registry(tmp_path / "data", env={"DOCKYARD_STORAGE_MAINTENANCE_READONLY_ENABLED": "true"})
    try:
        with httpx.Client(base_url=server.url, headers=HTML) as client:
            page = client.get("/r/team/app")
            assert "1.0" in page.text and "Delete" not in page.text
            refused = client.post("/r/team/app/-/delete", data={"reference": "1.0", "csrf": csrf_of(page.text)})
            assert refused.status_code == 405 and "read-only" in refused.text
        assert httpx.get(f"{server.url}/v2/team/app/manifests/1.0").status_code == 200
    finally:
        server.stop()


def test_a_new_password_or_a_removed_user_ends_the_session(auth_registry: Served) -> None:
    from auth.htpasswd import HtpasswdFile

    users = HtpasswdFile(auth_registry.server.root.parent / "htpasswd", rounds=4)
    users.set_password("temp", "temp-pw")
    try:
        with httpx.Client(base_url=auth_registry.url, headers=HTML) as client:
            page = client.get("/login")
            form = {"csrf": csrf_of(page.text), "username": "temp", "password": "temp-pw"}
            assert client.post("/login", data=form).status_code == 303
            assert "Signed in as <strong>temp</strong>" in client.get("/").text
            users.set_password("temp", "another-pw")
            assert "Signed in as" not in client.get("/").text
            page = client.get("/login")
            form = {"csrf": csrf_of(page.text), "username": "temp", "password": "another-pw"}
            assert client.post("/login", data=form).status_code == 303
            assert "Signed in as <strong>temp</strong>" in client.get("/").text
            users.remove("temp")
            assert "Signed in as" not in client.get("/").text
    finally:
        users.remove("temp")
