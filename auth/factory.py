"""Builds the access controller the config asks for: `none`, `htpasswd` or `token`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request

from auth.base import AccessController, AnonymousController
from auth.config import AuthConfig, ServerContext, TokenConfig, TokenServerConfig
from typedconfig import ConfigError

if TYPE_CHECKING:
    from auth.keys import SigningKey

log = logging.getLogger("dockyard.auth")

DEFAULT_SERVICE = "dockyard"
DEFAULT_ISSUER = "dockyard"


def open_controller(auth: AuthConfig, server: ServerContext) -> AccessController:
    """The access controller for `auth`, with the token server's routes when it has one.

    Raises `ConfigError` for a config that cannot work (token mode without any key to trust,
    htpasswd mode without a file, an unreadable key or rules file).
    """
    if auth.mode == "none":
        if auth.access is not None:
            log.warning("auth.access is set but no auth mode is configured: everyone may do everything")
        return AnonymousController()
    # Imported here: bcrypt, JWT and crypto cost a server without auth ~15 MiB per worker for nothing.
    from jwt import PyJWTError

    from auth.basic import HtpasswdController
    from auth.bearer import TokenController
    from auth.htpasswd import HtpasswdFile, PasswordChecker, PasswordLike
    from auth.ratelimit import LoginLimiter
    from auth.rules import RuleSource
    from auth.token import ASYMMETRIC_ALGORITHMS, KeySet, TokenIssuer, TokenVerifier
    from auth.tokenserver import TokenServer

    limiter = LoginLimiter(auth.loginlimit.failures, auth.loginlimit.window, auth.loginlimit.maxdelay)
    robots = None
    if auth.robots is not None:
        from auth.robots import RobotFile

        if not auth.robots.path:
            raise ConfigError("auth.robots.path: the robots file is required")
        robots = RobotFile(auth.robots.path)
    rules = RuleSource.from_config(auth.access, robots)
    checker: PasswordLike | None = None
    if auth.htpasswd is not None:
        if not auth.htpasswd.path:
            raise ConfigError("auth.htpasswd.path: the htpasswd file is required")
        users = HtpasswdFile(auth.htpasswd.path)
        if not users.path.exists():
            log.warning("htpasswd file %s does not exist yet; add users with `dockyard user add`", users.path)
        checker = PasswordChecker(users)
    if robots is not None:
        from auth.robots import RobotAwareChecker

        checker = RobotAwareChecker(robots, checker)
    trust = server.trust_forwarded
    if auth.mode == "htpasswd":
        assert checker is not None and auth.htpasswd is not None
        return HtpasswdController(checker, rules, limiter, auth.htpasswd.realm, trust)
    token = auth.token or TokenConfig()
    service = token.service or DEFAULT_SERVICE
    issuer = token.issuer or DEFAULT_ISSUER
    server_cfg = auth.tokenserver
    own = _signing_key(server, server_cfg, issuer) if server_cfg is not None else None
    try:
        keys = KeySet.load(token.rootcertbundle, token.jwks, [own] if own else [])
    except (OSError, ValueError, PyJWTError) as exc:
        raise ConfigError(f"auth.token: cannot load rootcertbundle/jwks: {exc}") from None
    if not keys.keys and not keys.roots:
        raise ConfigError("auth.token: no key to verify tokens with (configure tokenserver, rootcertbundle or jwks)")
    algorithms = token.signingalgorithms or list(ASYMMETRIC_ALGORITHMS)
    for alg in algorithms:
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ConfigError(f"auth.token.signingalgorithms: {alg!r} is not accepted (asymmetric algorithms only)")
    verifier = TokenVerifier(keys, issuer, service, algorithms, token.leeway)
    if server_cfg is None:
        if not token.realm:
            raise ConfigError("auth.token.realm is required when the built-in token server is off")
        return TokenController(verifier, _realm(token, server.public_host, trust, ""), service, subjects=robots)
    assert own is not None
    issuer_obj = TokenIssuer(
        own,
        issuer,
        int(server_cfg.expiration),
        int(server_cfg.refreshexpiration),
    )
    basic_realm = auth.htpasswd.realm if auth.htpasswd is not None else "Registry Realm"
    token_server = TokenServer(
        issuer_obj, service, checker, rules, limiter, server_cfg.path, server_cfg.jwkspath, trust, basic_realm
    )
    realm = _realm(token, server.public_host, trust, server_cfg.path)
    return TokenController(verifier, realm, service, rules, token_server.routes, robots)


def _signing_key(server: ServerContext, cfg: TokenServerConfig, issuer: str) -> SigningKey:
    from auth.keys import KeyFileError, SigningKey, from_key_file, generate, libtrust_kid, load_or_create, self_signed

    try:
        if cfg.key:
            return from_key_file(cfg.key, issuer)
        if server.key_directory is not None:
            return load_or_create(server.key_directory, cfg.algorithm, issuer)
    except (KeyFileError, OSError) as exc:
        raise ConfigError(f"auth.tokenserver: {exc}") from None
    if server.volatile:
        # Nothing outlives the process with in-memory storage, so neither need the tokens.
        key = generate(cfg.algorithm)
        log.warning("in-memory storage: the token signing key is made afresh and lasts this process only")
        return SigningKey(key, cfg.algorithm, libtrust_kid(key.public_key()), self_signed(key, issuer))
    raise ConfigError("auth.tokenserver.key is required when storage is not the local filesystem")


def _realm(token: TokenConfig, host: str, trust: bool, path: str) -> Callable[[Request], str]:
    from auth import challenge

    """The challenge's realm: `auth.token.realm` as written; with `autoredirect` (as distribution
    2.8.3+), its path on whatever scheme and host the client used; without a realm, the built-in
    token server's path there."""
    if token.realm and not token.autoredirect:
        realm = token.realm
        return lambda request: realm
    if token.realm:
        path = urlsplit(token.realm).path or path
    return lambda request: challenge.public_base(request, host, trust) + path
