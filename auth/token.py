"""Bearer tokens: JWTs as docs/spec/auth/jwt.md describes them, issued and verified.

The verifier finds the signing key from the token's header the way distribution does: an `x5c`
chain ending at a certificate of the `rootcertbundle`, else a `jwk` or `kid` naming a trusted key
(the bundle's certificates by libtrust key ID, the JWKS file's keys, and our own signing key).
Only asymmetric algorithms are accepted, so neither `alg: none` nor an HMAC keyed with a public
key can pass. Every failure is an `InvalidToken` with a reason fit to show the client.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.keys import PublicKey, SigningKey, libtrust_kid
from auth.scopes import Scope

ASYMMETRIC_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
MAX_TOKEN_BYTES = 16 * 1024
_REFRESH_CLAIM = "dockyard_refresh"
# An access token cut for a robot carries its credential stamp, so replacing the robot voids it.
STAMP_CLAIM = "dockyard_stamp"


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why, without echoing the token."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime.datetime

    def response(self) -> dict[str, Any]:
        """The token endpoint's JSON (docs/spec/auth/token.md, "Token Response Fields")."""
        return {
            "token": self.token,
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": self.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class TokenClaims:
    issuer: str
    subject: str
    access: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    stamp: str = ""  # STAMP_CLAIM, when the token has one

    def allows(self, type: str, name: str, action: str) -> bool:
        actions = self.access.get((type, name), frozenset())
        return action in actions or "*" in actions


class TokenIssuer:
    def __init__(
        self,
        key: SigningKey,
        issuer: str,
        expiration: int = 300,
        refresh_expiration: int = 30 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Clients must get at least 60 seconds (docs/spec/auth/token.md, expires_in).
        self.key, self.issuer, self.expiration = key, issuer, max(60, expiration)
        self.refresh_expiration = refresh_expiration
        self._clock = clock

    def access_token(self, subject: str | None, audience: str, scopes: Sequence[Scope], stamp: str = "") -> IssuedToken:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject or "",
            "aud": audience,  # a string: distribution 2.x cannot read a list here
            "exp": now + self.expiration,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": [s.claim() for s in scopes],
        }
        if stamp:
            claims[STAMP_CLAIM] = stamp
        issued = datetime.datetime.fromtimestamp(now, datetime.UTC)
        return IssuedToken(self._sign(claims), self.expiration, issued)

    def refresh_token(self, subject: str, audience: str, stamp: str) -> str:
        """A long-lived token for the token endpoint only: its audience is not the registry's."""
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": _refresh_audience(audience),
            "exp": now + self.refresh_expiration,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            _REFRESH_CLAIM: stamp,
        }
        return self._sign(claims)

    def read_refresh_token(self, token: str, audience: str, leeway: float = 60.0) -> tuple[str, str]:
        """(subject, stamp) of a refresh token this issuer made for `audience`."""
        keys = KeySet({self.key.kid: self.key.public})
        verifier = TokenVerifier(keys, self.issuer, _refresh_audience(audience), leeway=leeway, clock=self._clock)
        payload = verifier.payload(token)
        stamp, subject = payload.get(_REFRESH_CLAIM), payload.get("sub")
        if not isinstance(stamp, str) or not isinstance(subject, str) or not subject:
            raise InvalidToken("not a refresh token")
        return subject, stamp

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key.private, algorithm=self.key.algorithm, headers={"kid": self.key.kid})


def _refresh_audience(audience: str) -> str:
    return f"{audience}#refresh"


def credential_stamp(hashed_password: str) -> str:
    """Binds a refresh token to the password it was earned with: a new password voids it."""
    return hashlib.sha256(hashed_password.encode()).hexdigest()[:24]


class KeySet:
    """The keys tokens may be signed with, by key ID, and the roots an `x5c` chain must end at."""

    def __init__(self, keys: Mapping[str, PublicKey] | None = None, roots: Sequence[x509.Certificate] = ()) -> None:
        self.keys: dict[str, PublicKey] = dict(keys or {})
        self.roots = list(roots)
        for cert in self.roots:
            public = cert.public_key()
            if isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                self.keys.setdefault(libtrust_kid(public), public)

    @classmethod
    def load(cls, rootcertbundle: str = "", jwks: str = "", own: Iterable[SigningKey] = ()) -> KeySet:
        keys: dict[str, PublicKey] = {k.kid: k.public for k in own}
        roots: list[x509.Certificate] = []
        if rootcertbundle:
            roots = x509.load_pem_x509_certificates(Path(rootcertbundle).read_bytes())
        if jwks:
            for jwk in jwt.PyJWKSet.from_dict(json.loads(Path(jwks).read_text())).keys:
                if jwk.key_id and isinstance(jwk.key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                    keys[jwk.key_id] = jwk.key
        return cls(keys, roots)

    def resolve(self, header: Mapping[str, Any], now: float) -> PublicKey:
        if "x5c" in header:
            return self._from_chain(header["x5c"], now)
        if "jwk" in header:
            try:
                key = jwt.PyJWK.from_dict(header["jwk"]).key
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError, KeyError):
                raise InvalidToken("malformed jwk header") from None
            if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                raise InvalidToken("unsupported jwk key type")
            trusted = self.keys.get(libtrust_kid(key))
            if trusted is None or trusted != key:
                raise InvalidToken("token signed by an untrusted key")
            return trusted
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token names no signing key (kid, jwk or x5c)")
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        return key

    def _from_chain(self, chain: Any, now: float) -> PublicKey:
        if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
            raise InvalidToken("malformed x5c header")
        try:
            certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
        except (ValueError, binascii.Error):
            raise InvalidToken("malformed x5c certificate") from None
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        for cert in certs:
            if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
                raise InvalidToken("x5c certificate outside its validity period")
        try:
            for child, parent in itertools.pairwise(certs):
                child.verify_directly_issued_by(parent)
            last = certs[-1]
            if last not in self.roots:
                for root in self.roots:
                    if root.subject == last.issuer:
                        try:
                            last.verify_directly_issued_by(root)
                            break
                        except (ValueError, TypeError, InvalidSignature):
                            continue
                else:
                    raise InvalidToken("x5c chain does not end at a trusted certificate")
        except (ValueError, TypeError, InvalidSignature):
            raise InvalidToken("x5c chain does not verify") from None
        key = certs[0].public_key()
        if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            raise InvalidToken("unsupported x5c key type")
        return key


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ASYMMETRIC_ALGORITHMS,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
        max_cached: int = 10_000,
    ) -> None:
        self.keys, self.issuer, self.audience, self.leeway = keys, issuer, audience, leeway
        self.algorithms = [a for a in algorithms if a in ASYMMETRIC_ALGORITHMS]
        self._clock = clock
        # Clients send the same token with every request of a push or pull: a signature check costs
        # ~170 us, a lookup well under one. Entries are dropped once expired, and the cache is bounded.
        self._verified: dict[str, tuple[float, TokenClaims]] = {}
        self._max_cached = max_cached

    def verify(self, token: str) -> TokenClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if self._clock() <= cached[0] + self.leeway:
                return cached[1]
            del self._verified[token]
        payload = self.payload(token)
        if _REFRESH_CLAIM in payload:
            raise InvalidToken("a refresh token is not an access token")
        stamp = payload.get(STAMP_CLAIM, "")
        if not isinstance(stamp, str):
            raise InvalidToken(f"token {STAMP_CLAIM} is not a string")
        claims = TokenClaims(self.issuer, _subject(payload), _access(payload.get("access", [])), stamp)
        if len(self._verified) >= self._max_cached:
            now = self._clock()
            self._verified = {t: v for t, v in self._verified.items() if now <= v[0] + self.leeway}
            if len(self._verified) >= self._max_cached:
                self._verified.clear()
        self._verified[token] = (float(payload["exp"]), claims)
        return claims

    def payload(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(f"signing algorithm {str(alg)[:16]!r} is not accepted")
        now = self._clock()
        key = self.keys.resolve(header, now)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                # Times are checked below against our own clock (and a test's).
                options={
                    "require": ["iss", "aud", "exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad token signature") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token is for another service") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token from an untrusted issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim} claim") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken("token cannot be verified") from None
        self._check_times(payload, now)
        return payload

    def _check_times(self, payload: Mapping[str, Any], now: float) -> None:
        def number(name: str) -> float | None:
            value = payload.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidToken(f"token {name} is not a number")
            return float(value)

        exp, nbf, iat = number("exp"), number("nbf"), number("iat")
        if exp is not None and now > exp + self.leeway:
            raise InvalidToken("token expired")
        if nbf is not None and now < nbf - self.leeway:
            raise InvalidToken("token not valid yet")
        if iat is not None and now < iat - self.leeway:
            raise InvalidToken("token issued in the future")


def _subject(payload: Mapping[str, Any]) -> str:
    sub = payload.get("sub", "")
    if not isinstance(sub, str):
        raise InvalidToken("token sub is not a string")
    return sub


def _access(value: Any) -> dict[tuple[str, str], frozenset[str]]:
    if not isinstance(value, list):
        raise InvalidToken("token access claim is not a list")
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in value:
        if not isinstance(entry, dict):
            raise InvalidToken("token access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions", [])
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise InvalidToken("malformed token access entry")
        if not all(isinstance(a, str) for a in actions):
            raise InvalidToken("malformed token access actions")
        kind = kind.split("(", 1)[0]
        access[(kind, name)] = access.get((kind, name), frozenset()) | frozenset(actions)
    return access
