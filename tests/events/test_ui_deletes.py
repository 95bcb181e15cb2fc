"""Deletes made in the web UI give the same delete events as the API's DELETE (a tag alone; a
manifest, then each tag that went with it), by the user logged in, and an audit line each."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from auth.htpasswd import HtpasswdFile
from tests.events.client import push_image
from tests.events.conftest import endpoint, write_config
from tests.events.receiver import Receiver
from tests.servers import running_registry
from tests.ui.test_pages_http import HTML, csrf_of

pytestmark = pytest.mark.e2e

ACCESS = {"rules": [{"repositories": ["team/**"], "who": ["user:alice"], "actions": ["pull", "push", "delete"]}]}


def _ui_delete(browser: httpx.Client, origin: str, name: str, reference: str) -> None:
    confirm = browser.get(f"/r/{name}/-/delete", params={"reference": reference})
    assert confirm.status_code == 200, confirm.text
    done = browser.post(
        f"/r/{name}/-/delete", data={"reference": reference, "csrf": csrf_of(confirm.text)}, headers={"Origin": origin}
    )
    assert done.status_code == 303, done.text


def test_ui_deletes_emit_events_and_audit_lines(tmp_path: Path) -> None:
    users = HtpasswdFile(tmp_path / "htpasswd", rounds=4)
    users.set_password("alice", "alice-pw")
    audit = tmp_path / "audit.log"
    receiver = Receiver().start()
    config = write_config(
        tmp_path / "config.yml",
        [endpoint("ci", receiver.url())],
        auth={"htpasswd": {"path": str(users.path)}, "access": ACCESS},
        audit={"enabled": True, "path": str(audit)},
    )
    try:
        with running_registry(tmp_path / "data", config=config) as server:
            with httpx.Client(base_url=server.url, auth=("alice", "alice-pw")) as api:
                kept = push_image(api, "team/app", "v1", [b"ui layer one"])
                assert api.put(
                    "/v2/team/app/manifests/v1-copy",
                    content=api.get("/v2/team/app/manifests/v1", headers={"Accept": "*/*"}).content,
                    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                ).is_success
                gone = push_image(api, "team/app", "v2", [b"ui layer two"])
            before = len(receiver.wait_accepted(8))  # 3 pushes, a pull and a push (v1-copy), 3 pushes
            with httpx.Client(base_url=server.url, headers=HTML) as browser:
                page = browser.get("/login")
                form = {"csrf": csrf_of(page.text), "username": "alice", "password": "alice-pw", "next": "/"}
                assert browser.post("/login", data=form).status_code == 303
                _ui_delete(browser, server.url, "team/app", "v1-copy")  # a tag only
                _ui_delete(browser, server.url, "team/app", gone)  # a manifest, and its tag v2
            receiver.wait_accepted(before + 3)
            receiver.settle()
            events = receiver.accepted()[before:]
    finally:
        receiver.stop()
    tag_only, manifest, its_tag = events
    assert [e["action"] for e in events] == ["delete"] * 3
    assert tag_only["target"] == {"repository": "team/app", "tag": "v1-copy"}
    assert manifest["target"] == {"digest": gone, "repository": "team/app"}
    assert its_tag["target"] == {"repository": "team/app", "tag": "v2"}
    assert manifest["request"]["id"] == its_tag["request"]["id"] != tag_only["request"]["id"]
    for event in events:
        assert list(event) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
        assert event["actor"] == {"name": "alice"}
        assert event["request"]["method"] == "POST"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    deletes = [r for r in lines if r["action"] == "delete"]
    assert [(r["via"], r["user"], r["reference"]) for r in deletes] == [
        ("ui", "alice", "v1-copy"),
        ("ui", "alice", gone),
    ]
    assert deletes[0]["digest"] == kept and deletes[1]["tags"] == ["v2"]
    assert {r["request_id"] for r in deletes} == {tag_only["request"]["id"], manifest["request"]["id"]}
