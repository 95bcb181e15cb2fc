import os
import stat
import threading

import pytest

from auth.htpasswd import HtpasswdFile, PasswordChecker, UserError


def test_add_verify_list_remove(tmp_path):
    users = HtpasswdFile(tmp_path / "htpasswd", rounds=4)
    assert users.users() == []
    assert users.set_password("alice", "s3cret") is True
    assert users.set_password("bob", "hunter2") is True
    assert users.users() == ["alice", "bob"]
    assert users.verify("alice", "s3cret")
    assert not users.verify("alice", "hunter2")
    assert not users.verify("nobody", "s3cret")
    assert users.set_password("alice", "new") is False
    assert users.verify("alice", "new") and not users.verify("alice", "s3cret")
    assert users.remove("bob") is True
    assert users.remove("bob") is False
    assert users.users() == ["alice"]


def test_file_format_and_mode(tmp_path):
    path = tmp_path / "htpasswd"
    HtpasswdFile(path, rounds=4).set_password("alice", "pw")
    line = path.read_text()
    assert line.startswith("alice:$2y$") and line.endswith("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # An existing file keeps the mode its owner gave it.
    os.chmod(path, 0o640)
    HtpasswdFile(path, rounds=4).set_password("bob", "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".htpasswd.")]


def test_reads_htpasswd_B_and_skips_weak_hashes(tmp_path, caplog):
    # `htpasswd -nbB alice secret` output, and an MD5 entry distribution would not accept either.
    path = tmp_path / "htpasswd"
    path.write_text(
        "# comment\n"
        "alice:$2y$05$kM1UoC.xaSgGcoNDIwH1XOxeoU7x9cJ8YMd4B3S/Vo5ZfG6Av3N7e\n"
        "carol:$apr1$abc$def\n"
        "garbage line\n"
    )
    users = HtpasswdFile(path, rounds=4)
    assert users.users() == ["alice"]
    assert "does not have a bcrypt hash" in caplog.text
    assert "not a user:hash line" in caplog.text


def test_reloads_when_the_file_changes(tmp_path):
    path = tmp_path / "htpasswd"
    server_view = HtpasswdFile(path, rounds=4)
    assert server_view.users() == []
    HtpasswdFile(path, rounds=4).set_password("alice", "pw")
    assert server_view.users() == ["alice"]


def test_rejects_bad_names_and_passwords(tmp_path):
    users = HtpasswdFile(tmp_path / "htpasswd", rounds=4)
    for name in ("", "a:b", "-x", "a b", "x" * 65):
        with pytest.raises(UserError):
            users.set_password(name, "pw")
    with pytest.raises(UserError):
        users.set_password("alice", "")
    with pytest.raises(UserError, match="72"):
        users.set_password("alice", "x" * 73)
    assert not users.verify("alice", "x" * 100)


def test_corrupt_hash_is_a_failure_not_an_error(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("alice:$2y$12$short\n")
    assert not HtpasswdFile(path, rounds=4).verify("alice", "pw")


def test_concurrent_adds_keep_every_user(tmp_path):
    path = tmp_path / "htpasswd"
    threads = [
        threading.Thread(target=HtpasswdFile(path, rounds=4).set_password, args=(f"u{i}", "pw")) for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert HtpasswdFile(path, rounds=4).users() == [f"u{i}" for i in range(6)]


async def test_checker_caches_success_and_notices_changes(tmp_path, monkeypatch):
    path = tmp_path / "htpasswd"
    users = HtpasswdFile(path, rounds=4)
    users.set_password("alice", "pw")
    checker = PasswordChecker(users)
    calls = []
    original = users.verify
    monkeypatch.setattr(users, "verify", lambda u, p: calls.append(u) or original(u, p))
    assert await checker.check("alice", "pw")
    assert await checker.check("alice", "pw")
    assert len(calls) == 1
    assert not await checker.check("alice", "wrong")
    assert not await checker.check("alice", "wrong")
    assert len(calls) == 3  # failures are never cached
    HtpasswdFile(path, rounds=4).set_password("alice", "other")
    assert not await checker.check("alice", "pw")
    HtpasswdFile(path, rounds=4).remove("alice")
    assert not await checker.check("alice", "other")
