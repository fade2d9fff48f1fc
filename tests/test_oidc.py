"""OIDC bearer tokens against a real OpenID provider (oidc-provider under Node, on loopback):
what verifies, what an attacker's variations are refused with, and key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from harness_process import free_port
from oidc_harness import (
    AUDIENCE,
    FUTURE_AUDIENCE,
    OTHER_AUDIENCE,
    SHORT_AUDIENCE,
    OidcProvider,
)

from interlock.access.oidc import (
    InvalidToken,
    OidcConfig,
    OidcIdentity,
    OidcVerifier,
    oidc_config,
)
from interlock.config.env import load_settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def forge(header: dict[str, object], payload: dict[str, object], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


def parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload))


def verifier(provider: OidcProvider, **overrides: object) -> OidcVerifier:
    config = {"issuer": provider.issuer, "audience": AUDIENCE, **overrides}
    return OidcVerifier(OidcConfig(**config))  # type: ignore[arg-type]


def refused(v: OidcVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=f"(?i){reason}"):
        v.verify(token)


def test_a_token_from_the_issuer_verifies_with_its_subject_and_groups(
        oidc_provider: OidcProvider) -> None:
    identity = verifier(oidc_provider).verify(oidc_provider.token(groups=("ops", "finance")))
    assert isinstance(identity, OidcIdentity)
    assert (identity.subject, identity.groups) == ("interlock-test", ("ops", "finance"))
    assert identity.claims["iss"] == oidc_provider.issuer and identity.claims["aud"] == AUDIENCE


def test_a_token_without_groups_has_none(oidc_provider: OidcProvider) -> None:
    assert verifier(oidc_provider).verify(oidc_provider.token()).groups == ()


def test_another_audience_is_refused(oidc_provider: OidcProvider) -> None:
    refused(verifier(oidc_provider), oidc_provider.token(OTHER_AUDIENCE), "audience")


def test_another_issuer_is_refused(oidc_provider: OidcProvider) -> None:
    # Signed by a key we fetch and trust, but issued by someone other than our issuer.
    v = verifier(oidc_provider, issuer="https://issuer.example",
                 jwks_url=f"{oidc_provider.issuer}/jwks")
    refused(v, oidc_provider.token(), "issuer")


def test_a_discovery_document_naming_another_issuer_is_refused(
        oidc_provider: OidcProvider) -> None:
    v = verifier(oidc_provider, issuer=oidc_provider.issuer + "/")
    refused(v, oidc_provider.token(), "names another issuer")


def test_an_expired_token_is_refused(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.token(SHORT_AUDIENCE)
    assert parts(token)[1]["exp"] == parts(token)[1]["iat"] + 1  # type: ignore[operator]
    time.sleep(2.1)
    refused(verifier(oidc_provider, audience=SHORT_AUDIENCE, leeway_s=0), token, "expired")


def test_a_token_not_yet_valid_is_refused(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.token(FUTURE_AUDIENCE)
    assert "nbf" in parts(token)[1]
    refused(verifier(oidc_provider, audience=FUTURE_AUDIENCE), token, "not yet valid")


def test_a_tampered_payload_is_refused(oidc_provider: OidcProvider) -> None:
    header, payload, signature = oidc_provider.token(groups=("viewers",)).split(".")
    claims = json.loads(unb64(payload)) | {"groups": ["admins"]}
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    refused(verifier(oidc_provider), tampered, "Signature verification failed")


def test_a_tampered_signature_is_refused(oidc_provider: OidcProvider) -> None:
    header, payload, signature = oidc_provider.token().split(".")
    flipped = bytearray(unb64(signature))
    flipped[-1] ^= 1
    refused(verifier(oidc_provider), f"{header}.{payload}.{b64(bytes(flipped))}",
            "Signature verification failed")


def test_alg_none_is_refused(oidc_provider: OidcProvider) -> None:
    header, payload = parts(oidc_provider.token())
    for alg in ("none", "None", "NONE"):
        refused(verifier(oidc_provider), forge(header | {"alg": alg}, payload), "not accepted")


def test_hs256_signed_with_the_public_key_is_refused(oidc_provider: OidcProvider) -> None:
    """Key confusion: the issuer's public key (which anyone can fetch) as an HMAC secret."""
    header, payload = parts(oidc_provider.token(groups=("admins",)))
    jwks = httpx.get(f"{oidc_provider.issuer}/jwks").json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    pem = jwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (pem, json.dumps(jwk).encode()):
        unsigned = forge(header | {"alg": "HS256"}, payload).rsplit(".", 1)[0]
        mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        refused(verifier(oidc_provider), f"{unsigned}.{b64(mac)}", "not accepted")
    with pytest.raises(ValueError, match="asymmetric"):
        OidcConfig(issuer=oidc_provider.issuer, audience=AUDIENCE, algorithms=("HS256",))


def test_an_algorithm_the_key_does_not_name_is_refused(oidc_provider: OidcProvider) -> None:
    header, payload, signature = oidc_provider.token().split(".")
    ps = b64(json.dumps(json.loads(unb64(header)) | {"alg": "PS256"}).encode())
    refused(verifier(oidc_provider), f"{ps}.{payload}.{signature}", "does not match")


def test_a_token_over_8_kib_is_refused_before_any_parsing(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.token(groups=tuple(f"group-{i:05d}" for i in range(800)))
    assert len(token) > 8 * 1024  # a real, validly signed token, only too long
    refused(verifier(oidc_provider), token, "longer than")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "a.b.c.d", "é.é.é", "x" * 9000,
                                     "eyJhbGciOiJSUzI1NiJ9.e30."])
def test_garbage_is_refused(oidc_provider: OidcProvider, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        verifier(oidc_provider).verify(garbage)


def test_key_rotation_refetches_the_jwks_at_most_once_per_interval(
        oidc_provider: OidcProvider) -> None:
    v = verifier(oidc_provider, jwks_refetch_s=1.0)
    first = oidc_provider.token()
    v.verify(first)
    fetched = oidc_provider.jwks_requests()
    time.sleep(1.1)

    # The issuer rotates, keeping the old key published: the new kid makes us refetch once.
    oidc_provider.rotate(keep_old=True)
    second = oidc_provider.token()
    assert parts(second)[0]["kid"] != parts(first)[0]["kid"]
    assert v.verify(second).subject == "interlock-test"
    v.verify(first)
    assert oidc_provider.jwks_requests() == fetched + 1

    # Rotated again, old keys removed, within the interval: unknown kids (the real new one
    # and twenty forged ones) are refused without asking the issuer again.
    oidc_provider.rotate(keep_old=False)
    third = oidc_provider.token()
    refused(v, third, "no published key")
    header, payload = parts(third)
    for n in range(20):
        refused(v, forge(header | {"kid": f"forged-{n}"}, payload, b"x" * 256), "no published key")
    assert oidc_provider.jwks_requests() == fetched + 1

    # After the interval the new key is fetched; the removed key's tokens stay refused,
    # even once the JWKS has been fetched again for them.
    time.sleep(1.1)
    assert v.verify(third).subject == "interlock-test"
    assert oidc_provider.jwks_requests() == fetched + 2
    time.sleep(1.1)
    refused(v, first, "no published key")
    refused(v, second, "no published key")
    assert oidc_provider.jwks_requests() == fetched + 3


def test_an_unreachable_issuer_is_refused_quickly() -> None:
    v = OidcVerifier(OidcConfig(issuer=f"http://127.0.0.1:{free_port()}", audience=AUDIENCE,
                                http_timeout_s=2.0))
    token = forge({"alg": "RS256", "kid": "k"}, {"sub": "x"}, b"x" * 256)
    started = time.monotonic()
    refused(v, token, "issuer keys unavailable")
    refused(v, token, "issuer keys unavailable")  # rate-limited: no second attempt
    assert time.monotonic() - started < 5


def test_oidc_config_comes_from_the_settings(tmp_path: Path) -> None:
    assert oidc_config(load_settings({"INTERLOCK_HOME": str(tmp_path)})) is None
    config = oidc_config(load_settings({
        "INTERLOCK_HOME": str(tmp_path), "INTERLOCK_OIDC_ISSUER": "https://id.example.com",
        "INTERLOCK_OIDC_AUDIENCE": "interlock", "INTERLOCK_OIDC_GROUPS_CLAIM": "roles"}))
    assert config == OidcConfig(issuer="https://id.example.com", audience="interlock",
                                groups_claim="roles")
    assert config.leeway_s == 30 and config.jwks_refetch_s == 10.0
    with pytest.raises(ValueError, match="INTERLOCK_OIDC_AUDIENCE"):
        oidc_config(load_settings({"INTERLOCK_HOME": str(tmp_path),
                                   "INTERLOCK_OIDC_ISSUER": "https://id.example.com"}))
    with pytest.raises(ValueError, match="https"):
        OidcConfig(issuer="http://id.example.com", audience="interlock")
