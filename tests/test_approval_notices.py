"""Approvals tell people outside Interlock: a signed webhook on request and on decision,
sent by the reconciler's notification job to a real local receiver, carrying facts (ids,
state, the payload hash), never the payload itself."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import approvals as approval_ops
from interlock.operations.runtime import periodic_jobs
from tests.test_approvals import person, request_of, start, vote
from tests.test_notify import SECRET, Receiver, configure, json_hook

FLOW = """
id: notified
namespace: bank.payments
nodes:
  pay:
    uses: noop
    with: {iban: FR7630006000011234567890189}
    approval: {subject: Pay the supplier, rules: [{role: approver}]}
"""


@pytest.fixture
def notified(sqlite_store: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EmbeddedDispatcher, Receiver]]:
    monkeypatch.setenv("NOTIFY_SECRET", SECRET)
    receiver = Receiver()
    configure(tmp_path, monkeypatch, json_hook(receiver.url))
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher, receiver
    dispatcher.close()
    receiver.close()


def test_a_request_and_its_decision_are_sent_signed(
        notified: tuple[EmbeddedDispatcher, Receiver]) -> None:
    dispatcher, receiver = notified
    run_id = start(dispatcher, FLOW)
    asked = request_of(run_id)
    vote(asked["id"], person("nora"), dispatcher=dispatcher)
    deadline = time.monotonic() + 30
    while len(receiver.requests) < 2:
        assert time.monotonic() < deadline, receiver.bodies()
        time.sleep(0.05)
    bodies = sorted(receiver.bodies(), key=lambda b: b["id"])  # sent concurrently: by id
    assert [b["event"] for b in bodies] == ["approval.requested", "approval.decided"]
    for headers, raw in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-interlock-signature-256"], expected)
        assert b"FR7630006000011234567890189" not in raw  # facts, not the payload
    decided = bodies[1]["payload"]
    assert decided["state"] == "approved" and decided["decided_by"] == ["user:nora"]
    assert decided["payload_hash"] == approval_ops.get_request(asked["id"])["payload_hash"]
