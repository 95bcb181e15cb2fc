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


LONG_PASSWORD = "correct horse battery staple, " * 3  # 90 bytes: bcrypt reads the first 72


def test_entry_made_from_a_password_over_72_bytes_logs_in_with_it(tmp_path):
    """bcrypt 4.1+ raises on such passwords; htpasswd -B and bcrypt's reference hash the first 72
    bytes, so checking those is what lets the user in with the password they chose."""
    import bcrypt

    path = tmp_path / "htpasswd"
    # What bcrypt < 4.1 (and every C implementation) made of the long password: its 72-byte prefix.
    old_way = bcrypt.hashpw(LONG_PASSWORD.encode()[:72], bcrypt.gensalt(4)).decode()
    path.write_text(f"alice:{old_way}\n")
    users = HtpasswdFile(path)
    assert users.verify("alice", LONG_PASSWORD)
    assert not users.verify("alice", LONG_PASSWORD[:71])
    assert not users.verify("alice", "x" + LONG_PASSWORD)


@pytest.mark.e2e
def test_entry_from_debian_htpasswd_B_with_a_long_password(tmp_path):
    from tests.conftest import require_tool

    htpasswd = require_tool("htpasswd")  # Debian package apache2-utils
    import subprocess

    path = tmp_path / "htpasswd"
    subprocess.run([htpasswd, "-cbB", "-C", "5", str(path), "alice", LONG_PASSWORD], check=True, capture_output=True)
    subprocess.run([htpasswd, "-bB", "-C", "5", str(path), "bob", "short-pw"], check=True, capture_output=True)
    users = HtpasswdFile(path)
    assert users.verify("alice", LONG_PASSWORD)
    assert not users.verify("alice", "correct horse")
    assert users.verify("bob", "short-pw")


def test_unknown_users_are_checked_at_the_cost_of_the_file_entries(tmp_path):
    """No existence oracle: the dummy hash an unknown user is checked against has the cost of the
    users' own hashes (htpasswd -B writes cost 5), not our default of 12."""
    from auth.htpasswd import cost_of

    path = tmp_path / "htpasswd"
    writer = HtpasswdFile(path, rounds=5)
    writer.set_password("alice", "pw-a")
    writer.set_password("bob", "pw-b")
    users = HtpasswdFile(path)  # the server's view, with the default cost for new hashes
    assert users.rounds == 12
    assert cost_of(users.hash_to_check("alice")) == 5
    assert cost_of(users.hash_to_check("nobody")) == 5
    assert users.hash_to_check("nobody") != users.hash_to_check("alice")
    assert not users.verify("nobody", "pw-a")
    HtpasswdFile(path, rounds=6).set_password("carol", "c")
    HtpasswdFile(path, rounds=6).set_password("dave", "d")
    HtpasswdFile(path, rounds=6).set_password("erin", "e")
    assert cost_of(users.hash_to_check("nobody")) == 6  # the cost most entries have
