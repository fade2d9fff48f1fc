"""The one cursor codec (interlock.store.cursor): round trips, and hostile input refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.store import cursor as cursors
from interlock.store.cursor import BadCursor

AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def _raw(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode()


def test_round_trip_of_each_key_type() -> None:
    token = cursors.encode("runs", AT, "r-1", 42)
    assert cursors.decode("runs", token, datetime, str, int) == (AT, "r-1", 42)
    assert "=" not in token and "+" not in token and "/" not in token


@given(at=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.just(UTC)),
       key=st.text(min_size=1, max_size=40).filter(lambda t: all(ord(c) >= 32 for c in t)),
       seq=st.integers(min_value=-2**63, max_value=2**63 - 1))
@settings(max_examples=200, deadline=None)
def test_any_key_we_issue_comes_back(at: datetime, key: str, seq: int) -> None:
    assert cursors.decode("x", cursors.encode("x", at, key, seq), datetime, str, int) \
        == (at, key, seq)


def test_padded_cursors_are_accepted() -> None:
    token = cursors.encode("audit", 7)
    assert cursors.decode("audit", token + "=" * (-len(token) % 4), int) == (7,)


@pytest.mark.parametrize("cursor", [
    "", "!!!", "nonsense", "YWJj", "bm90LWEtZGF0ZXxhYmM=", "é" * 10, "%00", "a b c d",
    "x" * (cursors.MAX_LENGTH + 1),                      # huge
    _raw("[" * 700 + "]" * 700),                          # deep nesting
    _raw('{"seq": 1}'), _raw('"audit"'), _raw("null"), _raw("1"),
    _raw('["audit"]'), _raw('["audit", 1, 2]'),           # wrong arity
    _raw('["runs", 1]'),                                  # another listing's cursor
    _raw('["audit", "1"]'), _raw('["audit", true]'), _raw('["audit", 1.5]'),
    _raw('["audit", NaN]'), _raw('["audit", Infinity]'),
    _raw(f'["audit", {2**63}]'), _raw(f'["audit", {"9" * 700}]'),  # out of BIGINT range
    _raw('["audit", [1]]'), _raw('["audit", {"a": 1}]'),
])
def test_hostile_audit_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadCursor, match="bad cursor"):
        cursors.decode("audit", cursor, int)


@pytest.mark.parametrize("key", [
    ["2025-03-01T12:30:00", "r"],          # naive time
    ["yesterday", "r"], [17, "r"], [None, "r"],
    ["2025-03-01T12:30:00+00:00", "r\u0000"],  # NUL: PostgreSQL would refuse it
    ["2025-03-01T12:30:00+00:00", "r\n"], ["2025-03-01T12:30:00+00:00", 5],
])
def test_hostile_time_and_text_parts_are_refused(key: list[object]) -> None:
    with pytest.raises(BadCursor, match="next_cursor"):
        cursors.decode("runs", _raw(json.dumps(["runs", *key])), datetime, str)


@pytest.mark.parametrize("cursor", [None, 5, b"YWJj", ["runs"], {"runs": 1}])
def test_non_strings_are_refused(cursor: object) -> None:
    with pytest.raises(BadCursor):
        cursors.decode("runs", cursor, str)


def test_the_message_names_the_listing_and_is_bounded() -> None:
    with pytest.raises(BadCursor) as caught:
        cursors.decode("dashboards/runs", "z" * 900, datetime, str)
    message = str(caught.value)
    assert "/dashboards/runs" in message and len(message) < 250


def test_bad_cursor_is_a_value_error() -> None:
    """The API maps ValueError to 400; BadCursor must stay one."""
    assert issubclass(BadCursor, ValueError)
