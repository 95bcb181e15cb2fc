"""Robot accounts: tokens for CI, each with a scope (repository globs and actions) and an expiry.

They log in as `robot$NAME` with the token as the password, by HTTP Basic or through the token
endpoint, like any user. The token is shown once, when created; the file (`auth.robots.path`, a
JSON file written atomically with mode 0600) keeps only its SHA-256, which is enough for a random
256-bit secret. A robot may do exactly what its scope says, whatever `auth.access` says of others;
an expired or removed robot is refused at its next login, and the bearer tokens it was given are
refused at their next request (`token_live`, which the token-mode controller asks).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from auth.htpasswd import PasswordLike
from auth.rules import ROBOT_PREFIX as PREFIX
from auth.token import credential_stamp

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ACTIONS = frozenset({"pull", "push", "delete"})


class RobotError(ValueError):
    """A bad name, scope or expiry (the CLI prints it)."""


@dataclass(frozen=True)
class Scope:
    repositories: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`team/*:pull,push`."""
        glob, sep, actions = text.rpartition(":")
        wanted = frozenset(a.strip() for a in actions.split(",") if a.strip())
        if not sep or not glob or not wanted:
            raise RobotError(f"scope {text!r}: expected REPOSITORY-GLOB:ACTION[,ACTION] (team/*:pull,push)")
        unknown = wanted - _ACTIONS
        if unknown:
            raise RobotError(f"scope {text!r}: unknown action(s) {', '.join(sorted(unknown))} (pull, push, delete)")
        if "push" in wanted:
            wanted |= {"pull"}  # a push reads what is there first, as auth.access rules grant it
        return cls(glob, wanted)

    def __str__(self) -> str:
        return f"{self.repositories}:{','.join(sorted(self.actions))}"


@dataclass(frozen=True)
class Robot:
    name: str
    hashed: str
    scopes: tuple[Scope, ...]
    created: float
    expires: float  # 0: never

    def expired(self, now: float | None = None) -> bool:
        return bool(self.expires) and (now or time.time()) >= self.expires

    def actions(self, repository: str) -> frozenset[str]:
        granted: set[str] = set()
        for scope in self.scopes:
            if fnmatch.fnmatchcase(repository, scope.repositories):
                granted |= scope.actions
        return frozenset(granted)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RobotFile:
    """The robots, read again whenever the file changes (so `dockyard robot rm` takes effect at once)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._robots: dict[str, Robot] = {}

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def robots(self) -> dict[str, Robot]:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._robots = self._read() if stamp is not None else {}
            self._stamp = stamp
        return self._robots

    def _read(self) -> dict[str, Robot]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return self._robots  # mid-edit or unreadable: keep what was known
        robots: dict[str, Robot] = {}
        for name, entry in data.get("robots", {}).items():
            scopes = tuple(Scope(s["repositories"], frozenset(s["actions"])) for s in entry["scopes"])
            robots[name] = Robot(name, entry["sha256"], scopes, float(entry["created"]), float(entry["expires"]))
        return robots

    def _write(self, robots: dict[str, Robot]) -> None:
        data = {
            "robots": {
                r.name: {
                    "sha256": r.hashed,
                    "scopes": [{"repositories": s.repositories, "actions": sorted(s.actions)} for s in r.scopes],
                    "created": r.created,
                    "expires": r.expires,
                }
                for r in robots.values()
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".robots-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def add(self, name: str, scopes: list[Scope], expires_in: float) -> str:
        """Create (or replace) a robot; returns its token, which is stored only as a hash."""
        if not _NAME.fullmatch(name):
            raise RobotError(f"robot name {name!r}: lower-case letters, digits, . _ - (at most 64)")
        if not scopes:
            raise RobotError("a robot needs at least one --scope")
        token = "dyr_" + secrets.token_urlsafe(32)
        now = time.time()
        robots = dict(self.robots())
        robots[name] = Robot(name, _hash(token), tuple(scopes), now, now + expires_in if expires_in else 0.0)
        self._write(robots)
        return token

    def remove(self, name: str) -> bool:
        robots = dict(self.robots())
        if robots.pop(name, None) is None:
            return False
        self._write(robots)
        return True

    def robot(self, user: str) -> Robot | None:
        """The live robot a `robot$NAME` user name designates (None if unknown or expired)."""
        if not user.startswith(PREFIX):
            return None
        robot = self.robots().get(user[len(PREFIX) :])
        return None if robot is None or robot.expired() else robot

    def robot_actions(self, user: str, repository: str) -> frozenset[str] | None:
        robot = self.robot(user)
        return None if robot is None else robot.actions(repository)

    def token_live(self, subject: str, stamp: str) -> bool:
        """Whether a bearer token cut for `subject` may still be used: a robot's only while it
        exists and has not expired, and (when the token names the robot's credential stamp, as
        ours do) was not replaced by `robot add` of the same name since. Anyone else's: yes, this
        file does not speak for them."""
        if not subject.startswith(PREFIX):
            return True
        robot = self.robot(subject)
        if robot is None:
            return False
        return not stamp or hmac.compare_digest(stamp, credential_stamp(robot.hashed))

    def verify(self, user: str, token: str) -> bool:
        robot = self.robot(user)
        return robot is not None and hmac.compare_digest(robot.hashed, _hash(token))


class RobotAwareChecker:
    """Passwords: `robot$NAME` against the robots file, everyone else against htpasswd (if any)."""

    def __init__(self, robots: RobotFile, users: PasswordLike | None) -> None:
        self.robots = robots
        self.inner = users

    def entry(self, user: str) -> str | None:
        if user.startswith(PREFIX):
            robot = self.robots.robot(user)
            return None if robot is None else robot.hashed
        return self.inner.entry(user) if self.inner is not None else None

    def remembered(self, user: str, password: str) -> bool:
        if user.startswith(PREFIX):
            return self.robots.verify(user, password)  # one SHA-256: nothing worth remembering
        return self.inner is not None and self.inner.remembered(user, password)

    async def check(self, user: str, password: str) -> bool:
        if user.startswith(PREFIX):
            return self.robots.verify(user, password)
        return self.inner is not None and await self.inner.check(user, password)
