"""Auth mode `htpasswd`: HTTP Basic against the user file, then the access rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
from starlette.requests import Request
from starlette.routing import BaseRoute

from auth import challenge
from auth.base import SUBJECT_KEY, Access, Challenge, Denied, Grant
from auth.credentials import Basic, MalformedCredentials, client_address, parse_authorization
from auth.htpasswd import PasswordLike
from auth.ratelimit import LoginLimiter
from auth.rules import ANONYMOUS, Identity, RuleSource


@dataclass(frozen=True)
class RuleGrant:
    """A caller's rights straight from the rules (htpasswd mode, and the catalog in token mode)."""

    identity: Identity
    rules: RuleSource

    @property
    def subject(self) -> str | None:
        return self.identity.name

    def allows(self, type: str, name: str, action: str) -> bool:
        return self.rules.current().allows(self.identity, type, name, action)


async def login(checker: PasswordLike, limiter: LoginLimiter, address: str, user: str, password: str) -> bool:
    """Check a password under the failed-login limits; raises `TooManyRequests` while limited."""
    delay = limiter.check(address, user)
    # A password that matched moments ago skips the slow-down: Docker sends Basic credentials with
    # every request, and only the right password can be in the cache.
    if checker.remembered(user, password):
        return True
    if delay > 0:
        await anyio.sleep(delay)
    if await checker.check(user, password):
        return True
    limiter.fail(address, user)
    return False


@dataclass
class HtpasswdController:
    checker: PasswordLike
    rules: RuleSource
    limiter: LoginLimiter
    realm: str = "Registry Realm"
    trust_forwarded: bool = False
    routes: list[BaseRoute] = field(default_factory=list)

    async def authorize(self, request: Request, accesses: Sequence[Access]) -> Grant:
        wanted = challenge.needed(accesses)
        headers = challenge.basic(self.realm)
        try:
            creds = parse_authorization(request.headers.get("authorization"))
        except MalformedCredentials as exc:
            raise Challenge(str(exc), headers=headers, detail=challenge.detail(wanted)) from None
        rules = self.rules.current()
        if creds is None:
            # Anonymous callers get what the anonymous rules allow; the base endpoint (no accesses)
            # always answers with the challenge, since that is how clients learn to log in.
            if wanted and all(rules.allows(ANONYMOUS, a.type, a.name, a.action) for a in wanted):
                return RuleGrant(ANONYMOUS, self.rules)
            raise Challenge("authentication required", headers=headers, detail=challenge.detail(wanted))
        if not isinstance(creds, Basic):
            raise Challenge("this registry expects Basic credentials", headers=headers)
        address = client_address(request, self.trust_forwarded)
        if not await login(self.checker, self.limiter, address, creds.user, creds.password):
            raise Challenge("invalid username or password", headers=headers)
        identity = rules.identity(creds.user)
        request.scope[SUBJECT_KEY] = creds.user
        if not all(rules.allows(identity, a.type, a.name, a.action) for a in wanted):
            raise Denied("requested access to the resource is denied", detail=challenge.detail(wanted))
        return RuleGrant(identity, self.rules)
