"""HMAC signatures of pushed events."""

from __future__ import annotations

import pytest

from interlock.adapters import signing

BODY = b'{"system": "airflow/test", "kind": "dag_run"}'


def test_a_signed_body_verifies() -> None:
    headers = signing.sign("k", BODY, now=1_000_000)
    signing.verify("k", timestamp=headers[signing.TIMESTAMP_HEADER],
                   given=headers[signing.SIGNATURE_HEADER], body=BODY, now=1_000_010)


@pytest.mark.parametrize(("secret", "body", "now", "message"), [
    ("other", BODY, 1_000_000, "does not match"),
    ("k", BODY + b" ", 1_000_000, "does not match"),
    ("k", BODY, 1_000_000 + 301, "replay"),
])
def test_tampering_wrong_keys_and_replays_are_refused(secret: str, body: bytes, now: int,
                                                      message: str) -> None:
    headers = signing.sign("k", BODY, now=1_000_000)
    with pytest.raises(signing.BadSignature, match=message):
        signing.verify(secret, timestamp=headers[signing.TIMESTAMP_HEADER],
                       given=headers[signing.SIGNATURE_HEADER], body=body, now=now)


def test_missing_headers_are_refused() -> None:
    with pytest.raises(signing.BadSignature, match="missing"):
        signing.verify("k", timestamp=None, given=None, body=BODY)
    with pytest.raises(signing.BadSignature, match="not a unix time"):
        signing.verify("k", timestamp="soon", given="sha256=00", body=BODY)
