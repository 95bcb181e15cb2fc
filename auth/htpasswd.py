"""Users in an htpasswd file with bcrypt hashes, the format CNCF distribution reads.

Hashing goes through passlib's bcrypt handler. We use libpass, the maintained fork that keeps
the `passlib` import: passlib 1.7.4 is unmaintained and breaks on bcrypt 4.1+ (it reads
`bcrypt.__about__`, removed there, and its wrap-around self test trips bcrypt 5's refusal of
passwords over 72 bytes). New hashes use the `$2y$` prefix that `htpasswd -B` writes, which
distribution (Go's bcrypt) and Apache both accept.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
from passlib.hash import bcrypt

log = logging.getLogger("dockyard.auth")

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PASSWORD_BYTES = 72  # bcrypt only reads 72 bytes; bcrypt 5 refuses longer passwords outright
DEFAULT_ROUNDS = 12
_COST = re.compile(r"\$2[aby]\$(\d\d)\$")


@functools.cache
def _hasher() -> Any:
    # Built on first use: passlib picks and self-tests its bcrypt backend here, which costs
    # most of a second that commands never hashing a password should not pay.
    return bcrypt.using(ident="2y")


@functools.cache
def dummy_hash(rounds: int) -> str:
    """Checked against when the user is unknown, at the users' cost, so both cases take as long."""
    return str(_hasher().using(rounds=rounds).hash(secrets.token_urlsafe(16)))


def cost_of(hashed: str) -> int | None:
    """The cost parameter of a bcrypt hash (`$2y$05$...` is 5)."""
    found = _COST.match(hashed)
    return int(found.group(1)) if found else None


def password_bytes(password: str) -> bytes:
    """What bcrypt reads of a password: its first 72 bytes. Apache's `htpasswd -B` and bcrypt's
    reference implementation hash a longer password by those alone, so checking them is what
    lets such a user in; bcrypt 4.1+ refuses longer input instead of truncating it."""
    return password.encode()[:MAX_PASSWORD_BYTES]


class UserError(ValueError):
    pass


def check_user_name(name: str) -> None:
    if not USER_NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r}: letters, digits and . _ @ - (up to 64, not first)")


def check_password(password: str) -> None:
    if not password:
        raise UserError("empty password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise UserError(f"password longer than {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")


class HtpasswdFile:
    """The user file, re-read whenever it changes on disk (so `dockyard user add` needs no restart)."""

    def __init__(self, path: str | os.PathLike[str], rounds: int = DEFAULT_ROUNDS) -> None:
        self.path = Path(path)
        self.rounds = rounds
        self._hasher = _hasher().using(rounds=rounds)
        self._entries: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._cost = rounds

    def entries(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return self._entries
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._entries = _parse(self.path.read_text(), str(self.path))
            self._stamp = stamp
            self._cost = _usual_cost(self._entries.values(), self.rounds)
        return self._entries

    def hash_to_check(self, user: str) -> str:
        """The user's hash, or for an unknown user a dummy one at the cost most entries have."""
        hashed = self.entries().get(user)
        return hashed if hashed is not None else dummy_hash(self._cost)

    def users(self) -> list[str]:
        return sorted(self.entries())

    def entry(self, user: str) -> str | None:
        return self.entries().get(user)

    def verify(self, user: str, password: str) -> bool:
        """Blocking bcrypt check; run it off the event loop."""
        hashed = self.entry(user)
        try:
            ok = bool(_hasher().verify(password_bytes(password), self.hash_to_check(user)))
        except ValueError:
            log.warning("htpasswd entry for %s in %s is not a valid bcrypt hash", user, self.path)
            return False
        return ok and hashed is not None

    def set_password(self, user: str, password: str) -> bool:
        """Add the user or change their password; True if the user is new."""
        check_user_name(user)
        check_password(password)
        hashed = self._hasher.hash(password)
        with self._locked():
            entries = _parse(self.path.read_text(), str(self.path)) if self.path.exists() else {}
            new = user not in entries
            entries[user] = hashed
            self._write(entries)
        return new

    def remove(self, user: str) -> bool:
        with self._locked():
            if not self.path.exists():
                return False
            entries = _parse(self.path.read_text(), str(self.path))
            if entries.pop(user, None) is None:
                return False
            self._write(entries)
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Serialises concurrent `user add`/`user rm`, which read, change and rewrite the file.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, entries: dict[str, str]) -> None:
        # Write a sibling file and rename it over the old one: readers (the running server, or
        # distribution sharing the file) see the old file or the new one, never half of either.
        text = "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), mode)
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _usual_cost(hashes: Iterable[str], default: int) -> int:
    costs = Counter(c for c in map(cost_of, hashes) if c is not None)
    return costs.most_common(1)[0][0] if costs else default


def _parse(text: str, where: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            log.warning("%s:%d: not a user:hash line; ignored", where, number)
            continue
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            # distribution accepts only bcrypt too; an MD5 or SHA entry would be a weaker door.
            log.warning("%s:%d: user %s does not have a bcrypt hash; ignored", where, number, user)
            continue
        entries[user] = hashed
    return entries


class PasswordLike(Protocol):
    """What a login checks a password with (htpasswd users, and robots beside them)."""

    def entry(self, user: str) -> str | None: ...

    def remembered(self, user: str, password: str) -> bool: ...

    async def check(self, user: str, password: str) -> bool: ...


class PasswordChecker:
    """Checks passwords off the event loop, remembering recent successes for a short while.

    Docker sends Basic credentials with every request in htpasswd mode, and a bcrypt check costs
    about a quarter of a second. A success is remembered as an HMAC (under a key that lives only in
    this process) of user and password together with the hash it matched, for `ttl` seconds, so a
    changed or removed user stops matching at once. At most `concurrency` checks run at a time,
    so a flood of guesses cannot take every worker thread.
    """

    def __init__(self, users: HtpasswdFile, ttl: float = 60.0, concurrency: int = 2, max_cached: int = 10_000):
        self.users = users
        self._ttl = ttl
        self._max_cached = max_cached
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[float, str]] = {}
        self._limiter = anyio.CapacityLimiter(concurrency)

    def entry(self, user: str) -> str | None:
        """The user's current hash (what a refresh token's stamp is taken from)."""
        return self.users.entry(user)

    def _digest(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()

    def remembered(self, user: str, password: str) -> bool:
        """True if this password matched the user's current hash within the last `ttl` seconds."""
        hashed = self.users.entry(user)
        cached = self._cache.get(self._digest(user, password))
        return (
            cached is not None
            and cached[0] > time.monotonic()
            and hashed is not None
            and hmac.compare_digest(cached[1], hashed)
        )

    async def check(self, user: str, password: str) -> bool:
        if self.remembered(user, password):
            return True
        hashed = self.users.entry(user)
        digest = self._digest(user, password)
        now = time.monotonic()
        ok = await anyio.to_thread.run_sync(self.users.verify, user, password, limiter=self._limiter)
        if ok and hashed is not None:
            if len(self._cache) >= self._max_cached:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= self._max_cached:
                    self._cache.clear()
            self._cache[digest] = (now + self._ttl, hashed)
        return ok
