"""Signed session cookies and the CSRF tokens bound to them.

A session is a small signed value in one cookie: a random id, the user (None before login), a
stamp of that user's password hash (a new password or a removed user voids the session) and an
expiry. Nothing is kept on the server, so every worker and replica holding the same key accepts
it. The CSRF token of a form is an HMAC of the session id: a page from another site can neither
read it nor forge it, and a new session (login, logout) makes the old tokens worthless.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("dockyard.ui")

COOKIE = "dockyard_session"
KEY_FILE = Path("dockyard") / "ui" / "session.key"


@dataclass(frozen=True)
class Session:
    id: str
    user: str | None
    stamp: str
    expires: float

    @classmethod
    def new(cls, user: str | None, stamp: str, lifetime: float) -> Session:
        return cls(secrets.token_urlsafe(18), user, stamp, time.time() + lifetime)

    @classmethod
    def anonymous(cls, lifetime: float) -> Session:
        return cls.new(None, "", lifetime)


class SessionCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, data: bytes) -> str:
        mac = hmac.new(self._key, purpose.encode() + b"\0" + data, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def encode(self, session: Session) -> str:
        payload = orjson.dumps({"i": session.id, "u": session.user, "s": session.stamp, "e": int(session.expires)})
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac('session', body.encode())}"

    def decode(self, value: str | None) -> Session | None:
        """The session a cookie holds, or None if it is missing, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body.encode())):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["i"]), data["u"], str(data["s"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.user is not None and not isinstance(session.user, str):
            return None
        return session if session.expires > time.time() else None

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.id.encode())

    def csrf_valid(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))


def session_key(secret: str, filesystem_root: str | None, workers_share: bool) -> bytes:
    """The key sessions are signed with: from `http.secret` when set; else kept under the
    filesystem storage root (made on first start, shared by every worker); else made afresh,
    which only holds for one process."""
    if secret:
        return hashlib.sha256(b"dockyard-ui-session\0" + secret.encode()).digest()
    if filesystem_root is not None:
        return _load_or_create(Path(filesystem_root) / KEY_FILE)
    if workers_share:
        log.warning("ui: set http.secret so that logins hold across worker processes and replicas")
    return secrets.token_bytes(32)


def _load_or_create(path: Path) -> bytes:
    # Several workers start at once: each writes its candidate aside and links it into place;
    # the link fails for all but the first, so every worker reads the same key.
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".session.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path}: a session key holds at least 32 bytes")
    return key
