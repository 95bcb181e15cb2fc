"""Who the UI's visitor is and what they may do: the registry's own users and rules, never more.

The UI asks the same question as the API (`Grant.allows`), answered by the same rules the
access controller uses. A logged-in user's rights are those the rules give their name; an
anonymous visitor's are those the rules give anonymous callers. Without auth (mode `none`)
everyone may do everything, as on the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request

from auth.base import LOGIN_KEY, SUBJECT_KEY, AccessController, AllowAll, AnonymousController, Grant
from registry.audit.record import AUDIT_KEY

if TYPE_CHECKING:
    from auth.htpasswd import PasswordLike
    from auth.ratelimit import LoginLimiter
    from auth.rules import RuleSource

Mode = Literal["open", "login", "external"]


@dataclass(frozen=True)
class _Nothing:
    """A visitor who may do nothing (token mode with a token server elsewhere, before any login)."""

    subject: str | None = None

    def allows(self, type: str, name: str, action: str) -> bool:
        return False


class UiAccess:
    def __init__(
        self,
        mode: Mode,
        checker: PasswordLike | None = None,
        rules: RuleSource | None = None,
        limiter: LoginLimiter | None = None,
        trust_forwarded: bool = False,
    ) -> None:
        self.mode: Mode = mode
        self._checker = checker
        self._rules = rules
        self._limiter = limiter
        self._trust_forwarded = trust_forwarded

    @classmethod
    def of(cls, controller: AccessController) -> UiAccess:
        """The UI's view of the registry's access controller."""
        if isinstance(controller, AnonymousController):
            return cls("open")
        from auth.basic import HtpasswdController
        from auth.bearer import TokenController
        from auth.tokenserver import TokenServer

        if isinstance(controller, HtpasswdController):
            return cls("login", controller.checker, controller.rules, controller.limiter, controller.trust_forwarded)
        if isinstance(controller, TokenController):
            # The built-in token server checks the same htpasswd users against the same rules.
            for route in controller.routes:
                server: Any = getattr(getattr(route, "endpoint", None), "__self__", None)
                if isinstance(server, TokenServer) and server.users is not None:
                    return cls("login", server.users, server.rules, server.limiter, server.trust_forwarded)
            if controller.rules is not None:
                return cls("external", rules=controller.rules)
        return cls("external")

    def grant(self, user: str | None) -> Grant:
        if self.mode == "open":
            return AllowAll(user)
        if self._rules is None:
            return _Nothing()
        from auth.basic import RuleGrant

        rules = self._rules.current()
        return RuleGrant(rules.identity(user), self._rules)

    def sees_everything(self, user: str | None) -> bool:
        """Whether the visitor may pull every repository (no auth, or an admin): only they are shown
        totals over the whole store, which would otherwise tell of repositories they cannot see."""
        if self.mode == "open":
            return True
        if self._rules is None or user is None:
            return False
        rules = self._rules.current()
        return rules.identity(user).admin

    def stamp(self, user: str) -> str | None:
        """A stamp of the user's current password hash; None when the user no longer exists."""
        if self._checker is None:
            return None
        hashed = self._checker.entry(user)
        if hashed is None:
            return None
        from auth.token import credential_stamp

        return credential_stamp(hashed)

    async def login(self, request: Request, user: str, password: str) -> str | None:
        """The new session's stamp when the password is right (under the API's failed-login
        limits: raises `TooManyRequests` while limited), else None."""
        if self.mode != "login" or self._checker is None or self._limiter is None:
            return None
        from auth.basic import login
        from auth.credentials import client_address

        request.scope[LOGIN_KEY] = user
        request.scope[AUDIT_KEY] = {"via": "ui"}
        address = client_address(request, self._trust_forwarded)
        if not await login(self._checker, self._limiter, address, user, password):
            return None
        request.scope[SUBJECT_KEY] = user
        return self.stamp(user)
