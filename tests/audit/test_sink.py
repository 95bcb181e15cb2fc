"""The audit sink on its own: whole lines appended, a rotated file reopened, a bad path refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.audit.config import AuditConfig
from registry.audit.sink import AuditSink, check
from typedconfig import ConfigError


def test_a_file_moved_away_is_created_anew(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = AuditSink(AuditConfig(enabled=True, path=str(path)))
    sink.write({"n": 1})
    path.rename(tmp_path / "audit.log.1")  # logrotate, without copytruncate
    sink.write({"n": 2})
    sink.close()
    assert [json.loads(line) for line in (tmp_path / "audit.log.1").read_text().splitlines()] == [{"n": 1}]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"n": 2}]
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_existing_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text('{"before":true}\n')
    sink = AuditSink(AuditConfig(enabled=True, path=str(path)))
    sink.write({"after": True})
    sink.close()
    assert path.read_text() == '{"before":true}\n{"after":true}\n'


@pytest.mark.parametrize("where", ["missing/audit.log", "."])
def test_a_path_that_cannot_be_appended_to_is_a_config_error(tmp_path: Path, where: str) -> None:
    with pytest.raises(ConfigError, match=r"audit\.path"):
        check(AuditConfig(enabled=True, path=str(tmp_path / where)))
    check(AuditConfig(enabled=False, path=str(tmp_path / where)))  # off: not opened at all


def test_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    for path in ("", "-"):
        AuditSink(AuditConfig(enabled=True, path=path)).write({"to": "stderr"})
    assert capfd.readouterr().err == '{"to":"stderr"}\n' * 2
