"""The built-in token server: the token endpoint (docs/spec/auth/token.md and oauth.md) and JWKS.

`GET` takes Basic credentials (or none, for an anonymous token) and `service`/`scope` query
parameters; `POST` is the OAuth2 form with `grant_type=password` or `refresh_token`. The token
holds the intersection of what was asked and what the rules allow: a denied scope is left out,
never an error. Failed logins count against the client's address and the user name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from auth import challenge
from auth.base import LOGIN_KEY, SUBJECT_KEY, AuthError, Challenge
from auth.basic import login
from auth.credentials import Basic, MalformedCredentials, client_address, parse_authorization
from auth.htpasswd import PasswordLike
from auth.ratelimit import LoginLimiter
from auth.rules import ROBOT_PREFIX, RuleSource
from auth.scopes import Scope, ScopeError, format_scopes, parse_scopes
from auth.token import InvalidToken, TokenIssuer, credential_stamp
from oci.errorcodes import ErrorCode
from oci.reference import valid_name

log = logging.getLogger("dockyard.auth")

MAX_FORM_BYTES = 64 * 1024


class _BadRequest(AuthError):
    code = ErrorCode.UNSUPPORTED
    status_override = 400

    def __init__(self, message: str, oauth_error: str = "invalid_request") -> None:
        super().__init__(message)
        self.oauth_error = oauth_error


@dataclass
class TokenServer:
    issuer: TokenIssuer
    service: str
    users: PasswordLike | None
    rules: RuleSource
    limiter: LoginLimiter
    path: str = "/auth/token"
    jwks_path: str = "/auth/jwks.json"
    trust_forwarded: bool = False
    # The Basic realm of the endpoint's own 401s (RFC 7235: a 401 names its scheme).
    realm: str = "Registry Realm"

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(self.path, self.token, methods=["GET", "POST"], name="token"),
            Route(self.jwks_path, self.jwks, methods=["GET"], name="jwks"),
        ]

    async def jwks(self, request: Request) -> Response:
        """The public signing key as a JWK Set, for distribution 3.x's `auth.token.jwks`."""
        return JSONResponse(self.issuer.key.jwks())

    async def token(self, request: Request) -> Response:
        request.scope[LOGIN_KEY] = ""
        try:
            if request.method == "POST":
                return await self._post(request)
            return await self._get(request)
        except AuthError as exc:
            body: dict[str, Any] = {"errors": [{"code": exc.code.name, "message": exc.message, "detail": exc.detail}]}
            if isinstance(exc, _BadRequest):
                body.update(error=exc.oauth_error, error_description=exc.message)
            elif isinstance(exc, Challenge):
                body.update(error="invalid_grant", error_description=exc.message)
            headers = dict(exc.headers)
            if exc.status == 401:
                headers.setdefault("WWW-Authenticate", challenge.basic(self.realm)["WWW-Authenticate"])
            return JSONResponse(body, status_code=exc.status, headers=headers)

    async def _get(self, request: Request) -> Response:
        params = request.query_params
        self._check_service(params.get("service"))
        scopes = _scopes(params.getlist("scope"))
        try:
            creds = parse_authorization(request.headers.get("authorization"))
        except MalformedCredentials as exc:
            raise Challenge(str(exc)) from None
        user: str | None = None
        if isinstance(creds, Basic):
            await self._login(request, creds.user, creds.password)
            user = creds.user
        elif creds is not None:
            raise Challenge("the token endpoint takes Basic credentials")
        offline = params.get("offline_token", "").lower() == "true"
        return self._answer(user, scopes, offline, refresh=None)

    async def _post(self, request: Request) -> Response:
        form = await _form(request)
        self._check_service(form.get("service"))
        scopes = _scopes([s for s in form.getlist("scope") if isinstance(s, str)])
        grant_type = form.get("grant_type")
        if grant_type == "password":
            user, password = form.get("username"), form.get("password")
            if not isinstance(user, str) or not user or not isinstance(password, str):
                raise _BadRequest("grant_type=password needs username and password")
            await self._login(request, user, password)
            offline = form.get("access_type") == "offline"
            return self._answer(user, scopes, offline, refresh=None)
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token")
            if not isinstance(refresh, str) or not refresh:
                raise _BadRequest("grant_type=refresh_token needs refresh_token")
            user = self._refreshed_user(refresh)
            request.scope[LOGIN_KEY] = request.scope[SUBJECT_KEY] = user
            # oauth.md: with a refresh token the answer carries the same refresh token back.
            return self._answer(user, scopes, offline=False, refresh=refresh)
        raise _BadRequest("grant_type must be password or refresh_token", "unsupported_grant_type")

    def _answer(self, user: str | None, scopes: Sequence[Scope], offline: bool, refresh: str | None) -> Response:
        rules = self.rules.current()
        identity = rules.identity(user)
        granted = [g for g in (rules.grant(identity, s) for s in scopes) if g is not None]
        stamp = self._stamp(user) if user is not None and user.startswith(ROBOT_PREFIX) else ""
        issued = self.issuer.access_token(user, self.service, granted, stamp)
        body = issued.response()
        body["scope"] = format_scopes(granted)
        if refresh is not None:
            body["refresh_token"] = refresh
        elif offline and user is not None:
            body["refresh_token"] = self.issuer.refresh_token(user, self.service, self._stamp(user))
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _login(self, request: Request, user: str, password: str) -> None:
        request.scope[LOGIN_KEY] = user
        address = client_address(request, self.trust_forwarded)
        if self.users is None or not await login(self.users, self.limiter, address, user, password):
            log.info("token: failed login for %r from %s", user, address)
            raise Challenge("invalid username or password")
        request.scope[SUBJECT_KEY] = user

    def _refreshed_user(self, refresh: str) -> str:
        try:
            user, stamp = self.issuer.read_refresh_token(refresh, self.service)
        except InvalidToken as exc:
            raise Challenge(f"invalid refresh token: {exc}") from None
        if self.users is None or self._stamp(user) != stamp:
            raise Challenge("refresh token no longer valid: the user or the password changed")
        return user

    def _stamp(self, user: str) -> str:
        hashed = self.users.entry(user) if self.users is not None else None
        return credential_stamp(hashed) if hashed else ""

    def _check_service(self, service: object) -> None:
        # Tokens are only cut for this registry: the audience is not the client's choice.
        if service not in (None, "", self.service):
            raise _BadRequest(f"unknown service (this token server serves {self.service!r})")


def _scopes(values: Sequence[str]) -> list[Scope]:
    try:
        scopes = parse_scopes(values)
    except ScopeError as exc:
        raise _BadRequest(str(exc), "invalid_scope") from None
    for scope in scopes:
        # Rules match names by glob, so a name outside the grammar (`a/../b`, `a:pull:b`) could
        # match a rule meant for another repository; no registry route serves such a name anyway.
        if scope.type == "repository" and not valid_name(scope.name):
            raise _BadRequest(f"invalid repository name {scope.name[:256]!r} in scope", "invalid_scope")
    return scopes


async def _form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _BadRequest("the token endpoint takes application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _BadRequest("form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _BadRequest("form is not UTF-8") from None
    return FormData([(k, v) for k, v in pairs])
