"""HMAC signatures of pushed events."""

from __future__ import annotations

import pytest

from interlock.adapters import signing

BODY = b'{"system": "airflow/test", "kind": "dag_run"}'
K = "k" * 16  # the shortest key verify accepts (MIN_SECRET_BYTES)


def test_a_signed_body_verifies() -> None:
    headers = signing.sign(K, BODY, now=1_000_000)
    signing.verify(K, timestamp=headers[signing.TIMESTAMP_HEADER],
                   given=headers[signing.SIGNATURE_HEADER], body=BODY, now=1_000_010)


@pytest.mark.parametrize(("secret", "body", "now", "message"), [
    ("other-key-other-key", BODY, 1_000_000, "does not match"),
    (K, BODY + b" ", 1_000_000, "does not match"),
    (K, BODY, 1_000_000 + 301, "replay"),
])
def test_tampering_wrong_keys_and_replays_are_refused(secret: str, body: bytes, now: int,
                                                      message: str) -> None:
    headers = signing.sign(K, BODY, now=1_000_000)
    with pytest.raises(signing.BadSignature, match=message):
        signing.verify(secret, timestamp=headers[signing.TIMESTAMP_HEADER],
                       given=headers[signing.SIGNATURE_HEADER], body=body, now=now)


def test_missing_headers_are_refused() -> None:
    with pytest.raises(signing.BadSignature, match="missing"):
        signing.verify(K, timestamp=None, given=None, body=BODY)
    with pytest.raises(signing.BadSignature, match="not a unix time"):
        signing.verify(K, timestamp="soon", given="sha256=00", body=BODY)


def test_short_keys_and_non_ascii_headers_are_refused_not_crashed() -> None:
    headers = signing.sign("short", BODY, now=1_000_000)
    with pytest.raises(signing.BadSignature, match="shorter than 16"):
        signing.verify("short", timestamp=headers[signing.TIMESTAMP_HEADER],
                       given=headers[signing.SIGNATURE_HEADER], body=BODY, now=1_000_000)
    for timestamp, given in (("1000000", "sha256=\u00e9" + "0" * 63),
                             ("\u0661\u0662", "sha256=" + "0" * 64), ("+1000000", "x")):
        with pytest.raises(signing.BadSignature):
            signing.verify(K, timestamp=timestamp, given=given, body=BODY, now=1_000_000)
