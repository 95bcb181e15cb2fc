import io
import ssl
import stat
import sys

import pytest
from cryptography import x509

from auth.htpasswd import HtpasswdFile
from dockyard.__main__ import main


def run(monkeypatch, capsys, *argv, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_add_list_rm(tmp_path, monkeypatch, capsys):
    path = tmp_path / "htpasswd"
    code, out, _ = run(
        monkeypatch, capsys, "user", "add", "alice", "--password-stdin", "--file", str(path), stdin="s3cret pass\n"
    )
    assert code == 0 and "added user alice" in out
    assert "s3cret" not in out
    assert HtpasswdFile(path).verify("alice", "s3cret pass")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code, out, _ = run(
        monkeypatch, capsys, "user", "add", "alice", "--password-stdin", "--file", str(path), stdin="other\r\n"
    )
    assert code == 0 and "changed the password" in out
    assert HtpasswdFile(path).verify("alice", "other")
    run(monkeypatch, capsys, "user", "add", "bob", "--password-stdin", "--file", str(path), stdin="pw")
    code, out, _ = run(monkeypatch, capsys, "user", "list", "--file", str(path))
    assert code == 0 and out.split() == ["alice", "bob"]
    code, out, _ = run(monkeypatch, capsys, "user", "rm", "bob", "--file", str(path))
    assert code == 0
    code, _, err = run(monkeypatch, capsys, "user", "rm", "bob", "--file", str(path))
    assert code == 1 and "no user bob" in err
    code, _, err = run(
        monkeypatch, capsys, "user", "add", "bad:name", "--password-stdin", "--file", str(path), stdin="pw"
    )
    assert code == 1 and "invalid user name" in err
    code, _, err = run(monkeypatch, capsys, "user", "add", "carol", "--password-stdin", "--file", str(path), stdin="")
    assert code == 1 and "empty password" in err


def test_user_commands_read_the_config(tmp_path, monkeypatch, capsys):
    path = tmp_path / "users"
    config = tmp_path / "config.yml"
    config.write_text(f"auth:\n  htpasswd:\n    path: {path}\n")
    code, _, _ = run(
        monkeypatch, capsys, "user", "add", "dave", "--password-stdin", "--config", str(config), stdin="pw\n"
    )
    assert code == 0 and HtpasswdFile(path).users() == ["dave"]
    monkeypatch.setenv("DOCKYARD_CONFIG", str(config))
    code, out, _ = run(monkeypatch, capsys, "user", "list")
    assert out.split() == ["dave"]
    config.write_text("auth: {}\n")
    code, _, err = run(monkeypatch, capsys, "user", "list")
    assert code == 2 and "auth.htpasswd.path" in err


def test_user_add_needs_a_terminal_or_stdin_flag(tmp_path, monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "user", "add", "x", "--file", str(tmp_path / "h"))
    assert code == 1 and "--password-stdin" in err


def test_tls_selfsigned(tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "certs"
    code, out, _ = run(
        monkeypatch, capsys, "tls", "selfsigned", "--host", "registry.lan", "--host", "10.1.2.3", "--out", str(out_dir)
    )
    assert code == 0
    assert "/etc/docker/certs.d/registry.lan:PORT/ca.crt" in out
    assert stat.S_IMODE((out_dir / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out_dir / "server.key").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((out_dir / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((out_dir / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["registry.lan"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    # Python's own TLS stack accepts the pair for the name.
    context = ssl.create_default_context(cafile=str(out_dir / "ca.crt"))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(out_dir / "server.crt", out_dir / "server.key")
    assert context.verify_mode == ssl.CERT_REQUIRED
    # A second run for another name keeps the CA.
    code, out, _ = run(monkeypatch, capsys, "tls", "selfsigned", "--host", "other.lan", "--out", str(out_dir))
    assert code == 0 and "reused the CA" in out
    again = x509.load_pem_x509_certificate((out_dir / "ca.crt").read_bytes())
    assert again == ca
    x509.load_pem_x509_certificate((out_dir / "server.crt").read_bytes()).verify_directly_issued_by(ca)


def test_tls_needs_a_host(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run(monkeypatch, capsys, "tls", "selfsigned")
