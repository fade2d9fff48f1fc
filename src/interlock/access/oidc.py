"""OIDC bearer tokens: a JWT from the configured issuer, checked against the issuer's JWKS.

`OidcVerifier(config).verify(token)` gives an `OidcIdentity` (subject, groups, claims) or
raises `InvalidToken` with a short reason for the log; callers answer one fixed sentence.
PyJWT does the JOSE work (parsing, signatures, `iss`/`aud`/`exp`/`nbf`); this module only
decides which key to trust:

- the JWKS comes from `config.jwks_url` or the issuer's discovery document (whose `issuer`
  must be the configured one), fetched with timeouts and a size bound;
- an unknown `kid` (the issuer rotated its keys) refetches the JWKS, but at most once per
  `jwks_refetch_s`, so forged kids cannot make us hammer the issuer;
- only asymmetric algorithms are accepted: `none` and `HS*` (the public key used as an
  HMAC secret) never reach a key;
- a token's algorithm must fit the key (a JWK's own `alg`, when it has one, must match).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from interlock.config.env import Settings
from interlock.errors import InterlockError

MAX_TOKEN_BYTES = 8 * 1024
MAX_DOCUMENT_BYTES = 256 * 1024
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class InvalidToken(InterlockError):
    """A bearer token was refused; the message is a short reason for the log only."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None  # None: discovered from {issuer}/.well-known/openid-configuration
    groups_claim: str = "groups"
    subject_claim: str = "sub"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    leeway_s: int = 30
    jwks_refetch_s: float = 10.0   # at most one JWKS fetch per this many seconds
    jwks_max_age_s: float = 300.0  # keys older than this are refetched (when allowed)
    http_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("OIDC needs both an issuer and an audience")
        weak = [a for a in self.algorithms if a not in ASYMMETRIC]
        if weak or not self.algorithms:
            raise ValueError(f"OIDC algorithms must be asymmetric signatures, not {weak}")
        for url in (self.issuer, self.jwks_url):
            if url is not None:
                _check_url(url)


def _check_url(url: str) -> None:
    """https, or http on a loopback address only (tests, a local provider)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return
    raise ValueError(f"OIDC URL {url!r} must be https (http only on loopback)")


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    groups: tuple[str, ...]
    claims: dict[str, Any] = field(repr=False)


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The OIDC settings as an `OidcConfig`, or None when no issuer is configured."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise ValueError("INTERLOCK_OIDC_ISSUER is set but INTERLOCK_OIDC_AUDIENCE is not: "
                         "set it to the audience (aud) the issuer puts in Interlock's tokens")
    return OidcConfig(issuer=settings.oidc_issuer, audience=settings.oidc_audience,
                      jwks_url=settings.oidc_jwks_url,
                      groups_claim=settings.oidc_groups_claim)


class OidcVerifier:
    """Verifies bearer JWTs for one issuer; safe to share between threads."""

    def __init__(self, config: OidcConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._lock = threading.Lock()
        self._jwks_url = config.jwks_url
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._fetched_at: float | None = None   # when the keys were fetched (monotonic)
        self._tried_at: float | None = None     # last fetch attempt, successful or not

    def verify(self, token: str) -> OidcIdentity:
        header = _header(token)
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise InvalidToken(f"algorithm {str(alg)[:20]!r} is not accepted")
        key = _key(self._jwk(header.get("kid")), alg)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=self.config.audience,
                issuer=self.config.issuer, leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub", self.config.subject_claim]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        return OidcIdentity(subject=self._subject(claims), groups=self._groups(claims),
                            claims=claims)

    def _subject(self, claims: dict[str, Any]) -> str:
        subject = claims.get(self.config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise InvalidToken(f"claim {self.config.subject_claim!r} is not a non-empty string")
        return subject

    def _groups(self, claims: dict[str, Any]) -> tuple[str, ...]:
        groups = claims.get(self.config.groups_claim, [])
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidToken(f"claim {self.config.groups_claim!r} is not a list of strings")
        return tuple(groups)

    def _jwk(self, kid: object) -> dict[str, Any]:
        """The published JWK for ``kid``, refetching the JWKS (rate-limited) when unknown."""
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("kid is not a string")
        with self._lock:
            if self._stale() or kid not in self._keys:
                self._refetch()
            if not self._keys:
                raise InvalidToken("issuer keys unavailable (fetch refused by the rate limit)")
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            if kid not in self._keys:
                raise InvalidToken(f"no published key has kid {str(kid)[:64]!r}")
            return self._keys[kid]

    def _stale(self) -> bool:
        return (self._fetched_at is None
                or time.monotonic() - self._fetched_at > self.config.jwks_max_age_s)

    def _refetch(self) -> None:
        """Fetch the JWKS unless a fetch was tried within ``jwks_refetch_s`` (keeps old keys)."""
        now = time.monotonic()
        if self._tried_at is not None and now - self._tried_at < self.config.jwks_refetch_s:
            return
        self._tried_at = now
        try:
            if self._jwks_url is None:
                self._jwks_url = self._discover()
            self._keys = _signing_keys(self._get_json(self._jwks_url))
            self._fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError) as exc:
            if not self._keys:
                raise InvalidToken(f"issuer keys unavailable: {exc}") from None

    def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url)
        if document.get("issuer") != self.config.issuer:
            raise ValueError(f"discovery document at {url} names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError(f"discovery document at {url} has no jwks_uri")
        _check_url(jwks_uri)
        return jwks_uri

    def _get_json(self, url: str) -> dict[str, Any]:
        # Fetches are rare (rate-limited), so each has its own client: nothing to close.
        with httpx.Client(timeout=self.config.http_timeout_s, transport=self._transport,
                          follow_redirects=False) as http, \
                http.stream("GET", url, headers={"accept": "application/json"}) as response:
            response.raise_for_status()
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data


def _header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"token longer than {MAX_TOKEN_BYTES} bytes")
    if not token.isascii() or token.count(".") != 2:
        raise InvalidToken("not a compact JWS")
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"unreadable header: {exc}") from None


def _key(jwk: dict[str, Any], alg: str) -> jwt.PyJWK:
    """The JWK as a key for ``alg``; refused if the JWK names another algorithm or type."""
    if jwk.get("alg", alg) != alg:
        raise InvalidToken(f"token algorithm {alg} does not match the key's {jwk.get('alg')}")
    try:
        return jwt.PyJWK(jwk, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"key does not fit {alg}: {exc}") from None


def _signing_keys(jwks: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """The JWKS's signature keys by kid (public parts only; encryption keys left out)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("JWKS has no keys list")
    usable = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"
              and k.get("kty") in {"RSA", "EC", "OKP"}]
    return {k.get("kid"): k for k in usable}
