"""The one question the registry asks: may this request do these actions on these resources?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.routing import BaseRoute

from oci.errorcodes import ErrorCode

# Request scope keys auth fills in for the registry's logs (the access log, registry/audit): the
# authenticated subject (also when it is then refused), and the user name a login attempt gave
# ("" for an anonymous token), set by the token endpoint and the UI's login form.
SUBJECT_KEY = "dockyard.user"
LOGIN_KEY = "dockyard.login"


@dataclass(frozen=True, slots=True)
class Access:
    """One scope item: `repository:team/app:pull` is Access("repository", "team/app", "pull")."""

    type: str
    name: str
    action: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{self.action}"


class Grant(Protocol):
    """What an authenticated (or anonymous) caller may do."""

    @property
    def subject(self) -> str | None: ...

    def allows(self, type: str, name: str, action: str) -> bool: ...


@dataclass(frozen=True)
class AllowAll:
    subject: str | None = None

    def allows(self, type: str, name: str, action: str) -> bool:
        return True


class AuthError(Exception):
    """Base of the refusals; the registry renders them with the spec's JSON error body."""

    code: ClassVar[ErrorCode] = ErrorCode.UNAUTHORIZED
    # Set where the answer's status is not the code's usual one.
    status_override: ClassVar[int | None] = None

    def __init__(self, message: str, headers: Mapping[str, str] | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail

    @property
    def status(self) -> int:
        return self.status_override or self.code.status


class Challenge(AuthError):
    """401: credentials missing or wrong. `headers` carries `WWW-Authenticate`."""


class Denied(AuthError):
    code = ErrorCode.DENIED


class TooManyRequests(AuthError):
    code = ErrorCode.TOOMANYREQUESTS


class AccessController(Protocol):
    async def authorize(self, request: Request, accesses: Sequence[Access]) -> Grant:
        """Return the caller's grant if it holds every access asked for; raise `AuthError` otherwise."""
        ...


@runtime_checkable
class ServesRoutes(Protocol):
    """Optional for a controller: HTTP routes of its own beside /v2/ (the token endpoint)."""

    @property
    def routes(self) -> Sequence[BaseRoute]: ...


@dataclass
class AnonymousController:
    """Auth mode `none`: everyone may do everything (the embedded default, for localhost use)."""

    extra_routes: list[object] = field(default_factory=list)

    async def authorize(self, request: Request, accesses: Sequence[Access]) -> Grant:
        return AllowAll()
