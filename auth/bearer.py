"""Auth mode `token`: every request carries a JWT from the token server (ours or another)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request
from starlette.routing import BaseRoute

from auth import challenge
from auth.base import SUBJECT_KEY, Access, Challenge, Grant
from auth.credentials import Bearer, MalformedCredentials, parse_authorization
from auth.rules import RuleSource
from auth.token import InvalidToken, TokenClaims, TokenVerifier


class SubjectCheck(Protocol):
    def token_live(self, subject: str, stamp: str) -> bool: ...


@dataclass(frozen=True)
class TokenGrant:
    """What a verified token allows.

    A token holding `registry:catalog:*` from our own token server also lists every repository
    the rules let its subject pull: the catalog is filtered by the rules the token was cut from.
    """

    claims: TokenClaims
    rules: RuleSource | None = None

    @property
    def subject(self) -> str | None:
        return self.claims.subject or None

    def allows(self, type: str, name: str, action: str) -> bool:
        if self.claims.allows(type, name, action):
            return True
        if self.rules is None or (type, action) != ("repository", "pull"):
            return False
        if not self.claims.allows("registry", "catalog", "*"):
            return False
        rules = self.rules.current()
        return rules.allows(rules.identity(self.subject), type, name, action)


@dataclass
class TokenController:
    verifier: TokenVerifier
    realm: Callable[[Request], str]
    service: str
    rules: RuleSource | None = None
    routes: list[BaseRoute] = field(default_factory=list)
    # Asked of every verified token: a revoked robot's tokens stop working at once, not at expiry
    # (auth/robots.py reads its file again when it changes: one stat per request of a robot).
    subjects: SubjectCheck | None = None

    async def authorize(self, request: Request, accesses: Sequence[Access]) -> Grant:
        wanted = challenge.needed(accesses)
        realm = self.realm(request)
        try:
            creds = parse_authorization(request.headers.get("authorization"))
        except MalformedCredentials as exc:
            headers = challenge.bearer(realm, self.service, wanted, error="invalid_request")
            raise Challenge(str(exc), headers=headers, detail=challenge.detail(wanted)) from None
        if not isinstance(creds, Bearer):
            headers = challenge.bearer(realm, self.service, wanted)
            raise Challenge("authentication required", headers=headers, detail=challenge.detail(wanted))
        try:
            claims = self.verifier.verify(creds.token)
        except InvalidToken as exc:
            headers = challenge.bearer(realm, self.service, wanted, error="invalid_token")
            raise Challenge(str(exc), headers=headers, detail=challenge.detail(wanted)) from None
        if self.subjects is not None and not self.subjects.token_live(claims.subject, claims.stamp):
            headers = challenge.bearer(realm, self.service, wanted, error="invalid_token")
            message = "token revoked: its robot account was removed, replaced or has expired"
            raise Challenge(message, headers=headers, detail=challenge.detail(wanted))
        grant = TokenGrant(claims, self.rules)
        request.scope[SUBJECT_KEY] = grant.subject
        if not all(claims.allows(a.type, a.name, a.action) for a in wanted):
            # RFC 6750 section 3.1: Docker shows `insufficient_scope` as "denied: requested access
            # to the resource is denied", and clients that retry fetch a token for this scope.
            headers = challenge.bearer(realm, self.service, wanted, error="insufficient_scope")
            raise Challenge("insufficient scope", headers=headers, detail=challenge.detail(wanted))
        return grant
