"""Outbound notifications against a real HTTP receiver on 127.0.0.1 (no mocks): signed JSON,
the Slack format, retries with backoff on the store's clock, a dead port given up, a hanging
receiver bounded by the timeout, hostile notify files, filtering, and no secret anywhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from interlock import clock, notify
from interlock.notify import NotifyConfigError, NotifyEvent, deliver_due
from interlock.notify.queue import LEASE_S, claim_due
from interlock.operations.runtime import periodic_jobs
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, Notification, NotificationState

SECRET = "sEcReT-4f9a1c2e7b3d5a6c-do-not-leak"
SLACK_URL_SECRET = "T0000-B0000-slack-token-do-not-leak"
REQUESTED, DECIDED = NotifyEvent.APPROVAL_REQUESTED, NotifyEvent.APPROVAL_DECIDED


class Receiver:
    """A real HTTP server on 127.0.0.1: records each POST, answers the next scripted status
    (the last one repeats), or holds the request until released when `hang` is set."""

    def __init__(self, statuses: tuple[int, ...] = (200,), hang: bool = False) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses, self.hang = list(statuses), hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                          raw))
                if receiver.hang:
                    receiver.release.wait(10)
                status = (receiver.statuses.pop(0) if len(receiver.statuses) > 1
                          else receiver.statuses[0])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """`interlock.clock.now`, moved by hand: backoff is seen without sleeping."""

    def __init__(self) -> None:
        self.at = datetime.now(clock.now().tzinfo)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(clock, "now", c)
    return c


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SECRET", SECRET)


def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *hooks: dict[str, Any]) -> Path:
    path = tmp_path / "notify.yaml"
    path.write_text(yaml.safe_dump({"webhooks": list(hooks)}, sort_keys=False))
    monkeypatch.setenv("INTERLOCK_NOTIFY_FILE", str(path))
    return path


def json_hook(url: str, **more: Any) -> dict[str, Any]:
    return {"name": "desk", "url": url, "format": "json",
            "secret": {"env": "NOTIFY_SECRET"}, **more}


def enqueue(event: NotifyEvent = REQUESTED, namespace: str = "finance.payments",
            subject: str = "Pay batch 42", payload: dict[str, Any] | None = None,
            link: str | None = "https://interlock.example/approvals/ap-1") -> int:
    with session_scope() as s:
        return notify.enqueue(s, event=event, namespace=namespace, subject=subject,
                              payload={"request": "ap-1"} if payload is None else payload,
                              link=link)


def rows() -> list[Notification]:
    with session_scope() as s:
        found = list(s.scalars(select(Notification).order_by(Notification.id)))
        s.expunge_all()
        return found


# --- delivery ---------------------------------------------------------------------------


def test_a_json_delivery_is_signed_over_the_raw_body(store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     receiver: Receiver) -> None:
    configure(tmp_path, monkeypatch, json_hook(receiver.url))
    assert enqueue(payload={"request": "ap-1", "options": ["Approve", "Reject"]}) == 1
    (row,) = rows()
    assert deliver_due() == notify.Round(sent=1)
    (headers, raw), = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-interlock-signature-256"], expected)
    assert headers["x-interlock-event"] == "approval.requested"
    assert headers["x-interlock-delivery"] == str(row.id)
    assert headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body == {"id": row.id, "event": "approval.requested", "subject": "Pay batch 42",
                    "namespace": "finance.payments",
                    "link": "https://interlock.example/approvals/ap-1",
                    "payload": {"request": "ap-1", "options": ["Approve", "Reject"]},
                    "at": body["at"]}
    assert datetime.fromisoformat(body["at"]) == row.created_at
    assert rows() == []  # delivered: gone
    assert deliver_due() == notify.Round()  # and never sent again


def test_the_slack_format(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          receiver: Receiver) -> None:
    monkeypatch.setenv("SLACK_URL", receiver.url + "?token=" + SLACK_URL_SECRET)
    configure(tmp_path, monkeypatch, {"name": "ops", "url": {"env": "SLACK_URL"},
                                      "format": "slack"})
    enqueue(DECIDED, subject="Pay <!channel> & batch 42",
            payload={"option": "Approve", "decided_by": ["ann", "bob"], "reason": None})
    assert deliver_due().sent == 1
    (headers, _), = receiver.requests
    assert "x-interlock-signature-256" not in headers  # no secret: nothing to sign with
    body = receiver.bodies()[0]
    # Slack's control characters are escaped: `<!channel>` pings nobody.
    assert body["text"] == ("Approval decided: Pay &lt;!channel&gt; &amp; batch 42 "
                            "(finance.payments)")
    section, context, fields, actions = body["blocks"]
    assert section["text"]["text"] == "*Approval decided*\nPay &lt;!channel&gt; &amp; batch 42"
    assert "finance.payments" in context["elements"][0]["text"]
    assert [f["text"] for f in fields["fields"]] == ["*decided_by*\nann, bob",
                                                     "*option*\nApprove"]
    assert actions["elements"][0]["url"] == "https://interlock.example/approvals/ap-1"


def test_a_receiver_failing_twice_is_retried_with_backoff(store_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          fake_clock: Clock) -> None:
    flaky = Receiver(statuses=(500, 503, 204))
    try:
        configure(tmp_path, monkeypatch, json_hook(flaky.url))
        enqueue()
        start = fake_clock.at
        assert deliver_due() == notify.Round(retried=1)
        (row,) = rows()
        assert (row.tries, row.next_at, row.state) == (1, start + timedelta(seconds=5),
                                                      NotificationState.PENDING)
        assert row.last_error == "the receiver answered HTTP 500"
        assert deliver_due() == notify.Round()  # not due yet: nothing sent
        assert len(flaky.requests) == 1

        fake_clock.advance(5)
        assert deliver_due() == notify.Round(retried=1)
        (row,) = rows()
        assert (row.tries, row.next_at) == (2, fake_clock.at + timedelta(seconds=10))

        fake_clock.advance(10)
        assert deliver_due() == notify.Round(sent=1)
        assert rows() == []
        ids = {headers["x-interlock-delivery"] for headers, _ in flaky.requests}
        assert len(flaky.requests) == 3 and len(ids) == 1  # one delivery id to de-duplicate
    finally:
        flaky.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_port_is_retried_then_given_up_logged_and_audited(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    configure(tmp_path, monkeypatch,
              json_hook(f"http://127.0.0.1:{free_port()}/hook", max_tries=3))
    enqueue()
    with caplog.at_level(logging.WARNING, logger="interlock.notify"):
        assert deliver_due() == notify.Round(retried=1)
        fake_clock.advance(5)
        assert deliver_due() == notify.Round(retried=1)
        fake_clock.advance(10)
        assert deliver_due() == notify.Round(given_up=1)
    (row,) = rows()
    assert (row.state, row.tries) == (NotificationState.GIVEN_UP, 3)
    assert row.last_error == "could not reach the receiver (ConnectError)"
    fake_clock.advance(3600)
    assert deliver_due() == notify.Round()  # given up is never tried again
    assert "given up after 3 tries" in caplog.text and "webhook desk" in caplog.text
    with session_scope() as s:
        (record,) = s.scalars(select(AuditRecord).where(AuditRecord.action == "notify.failed"))
        assert record.target == f"notification/{row.id}"
        assert record.after == {"webhook": "desk", "event": "approval.requested",
                                "namespace": "finance.payments", "tries": 3,
                                "error": row.last_error}


def test_a_hanging_receiver_is_bounded_by_the_timeout(sqlite_store: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hanging = Receiver(hang=True)
    try:
        configure(tmp_path, monkeypatch, json_hook(hanging.url, timeout=0.5))
        enqueue()
        started = time.monotonic()
        assert deliver_due() == notify.Round(retried=1)
        assert time.monotonic() - started < 3
        assert rows()[0].last_error == "no answer within 0.5 s"

        # The reconciler's job starts a round in its own thread and never waits for it.
        later = rows()[0].next_at + timedelta(minutes=1)
        monkeypatch.setattr(clock, "now", lambda: later)
        sender = notify.NotificationSender()
        started = time.monotonic()
        assert sender.maybe_tick(None) == 1
        assert time.monotonic() - started < 0.2 and sender.busy()
        assert sender.maybe_tick(None) == 0  # one round at a time
        assert sender.wait(5)
        assert len(hanging.requests) == 2 and rows()[0].tries == 2
    finally:
        hanging.close()


def test_a_round_is_bounded_and_two_senders_never_send_a_row_twice(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        receiver: Receiver) -> None:
    configure(tmp_path, monkeypatch, json_hook(receiver.url))
    for n in range(30):
        enqueue(subject=f"request {n}")
    assert deliver_due(limit=5).sent == 5  # a bounded batch
    senders = [threading.Thread(target=deliver_due, kwargs={"limit": 30}) for _ in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(30)
    ids = [headers["x-interlock-delivery"] for headers, _ in receiver.requests]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert rows() == []


def test_a_claimed_row_is_leased(store_url: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, fake_clock: Clock,
                                 receiver: Receiver) -> None:
    configure(tmp_path, monkeypatch, json_hook(receiver.url))
    enqueue()
    with session_scope() as s:
        assert len(claim_due(s, limit=10)) == 1  # ... and its sender dies here
    assert deliver_due() == notify.Round()  # another sender leaves it while leased
    fake_clock.advance(LEASE_S)
    assert deliver_due() == notify.Round(sent=1)  # then sends it
    assert receiver.requests[0][0]["x-interlock-delivery"]


def test_the_reconciler_runs_the_sender() -> None:
    assert any(isinstance(job, notify.NotificationSender) for job in periodic_jobs())


# --- filtering ----------------------------------------------------------------------------


def test_webhooks_are_filtered_by_event_and_namespace(store_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://hooks.example/approvals"
    configure(tmp_path, monkeypatch,
              json_hook(url, name="all"),
              json_hook(url, name="finance-decisions", events=["approval.decided"],
                        namespaces=["finance.*"]),
              json_hook(url, name="hr", namespaces=["hr", "people.*"]))
    assert enqueue(REQUESTED, "finance.payments") == 1
    assert enqueue(DECIDED, "finance.payments") == 2
    assert enqueue(DECIDED, "financeteam") == 1  # `finance.*` is finance and below it only
    assert enqueue(REQUESTED, "hr") == 2
    assert enqueue(NotifyEvent.APPROVAL_REMINDER, "people.eu") == 2
    assert [(r.webhook, r.event, r.namespace) for r in rows()] == [
        ("all", "approval.requested", "finance.payments"),
        ("all", "approval.decided", "finance.payments"),
        ("finance-decisions", "approval.decided", "finance.payments"),
        ("all", "approval.decided", "financeteam"),
        ("all", "approval.requested", "hr"),
        ("hr", "approval.requested", "hr"),
        ("all", "approval.reminder", "people.eu"),
        ("hr", "approval.reminder", "people.eu")]


def test_no_notify_file_queues_nothing(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_NOTIFY_FILE", raising=False)
    assert enqueue() == 0 and rows() == []
    assert notify.NotificationSender().maybe_tick(None) == 0


def test_a_payload_is_bounded_and_a_link_must_be_web(store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, monkeypatch, json_hook("https://hooks.example/a"))
    enqueue(payload={"request": "ap-1", "blob": "x" * 100_000}, subject="s" * 5000,
            link="javascript:alert(1)")
    (row,) = rows()
    assert row.payload["request"] == "ap-1"
    assert row.payload["blob"] == {"sha256": hashlib.sha256(b"x" * 100_000).hexdigest(),
                                   "bytes": 100_000}
    assert len(row.subject) == 1000 and row.link is None


# --- secrets -------------------------------------------------------------------------------


def test_no_secret_in_any_row_or_log_line(store_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, fake_clock: Clock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    failing = Receiver(statuses=(500,))
    monkeypatch.setenv("SLACK_URL", failing.url + "?token=" + SLACK_URL_SECRET)
    try:
        configure(tmp_path, monkeypatch, json_hook(failing.url, max_tries=2),
                  {"name": "ops", "url": {"env": "SLACK_URL"}, "format": "slack",
                   "max_tries": 2})
        with caplog.at_level(logging.DEBUG):
            enqueue(payload={"request": "ap-1"})
            deliver_due()
            fake_clock.advance(10)
            assert deliver_due() == notify.Round(given_up=2)
        assert len(failing.requests) == 4
        with session_scope() as s:
            stored = [json.dumps([getattr(r, c.key) for c in Notification.__table__.columns],
                                 default=str) for r in s.scalars(select(Notification))]
            stored += [json.dumps([r.before, r.after, r.target], default=str)
                       for r in s.scalars(select(AuditRecord))]
        for secret in (SECRET, SLACK_URL_SECRET):
            assert secret not in caplog.text
            assert not any(secret in text for text in stored)
        assert "given up" in caplog.text
    finally:
        failing.close()


def test_a_missing_secret_is_a_failed_try_naming_the_variable(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        receiver: Receiver) -> None:
    configure(tmp_path, monkeypatch, json_hook(receiver.url))
    enqueue()
    monkeypatch.delenv("NOTIFY_SECRET")
    assert deliver_due() == notify.Round(retried=1)
    assert receiver.requests == []  # never sent unsigned
    assert rows()[0].last_error == ("webhook desk: environment variable NOTIFY_SECRET is "
                                    "not set; it holds a secret the notify file refers to")


def test_a_url_reference_that_resolves_to_a_file_url_is_not_fetched(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_URL", "file:///etc/passwd")
    configure(tmp_path, monkeypatch, {"name": "ops", "url": {"env": "SLACK_URL"},
                                      "format": "slack"})
    enqueue()
    assert deliver_due() == notify.Round(retried=1)
    assert "http:// or https://" in (rows()[0].last_error or "")


def test_a_webhook_removed_from_the_file_is_given_up(store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, monkeypatch, json_hook("https://hooks.example/a"))
    enqueue()
    configure(tmp_path, monkeypatch, json_hook("https://hooks.example/a", name="other"),
              json_hook("https://hooks.example/b", name="third"))
    assert deliver_due() == notify.Round(given_up=1)
    assert rows()[0].last_error == "webhook desk is no longer in the notify file"


# --- the notify file ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("webhooks:\n  - name: a\n    url: file:///etc/passwd\n    format: slack\n",
     ":3:5: webhook a: `url`: a webhook URL is http:// or https://"),
    ("webhooks:\n  - name: a\n    url: ftp://x.example/\n    format: slack\n",
     "webhook a: `url`: a webhook URL is http:// or https://"),
    ("webhooks:\n  - name: a\n    url: https://u:p@x.example/\n    format: slack\n",
     "credentials in a webhook URL are refused"),
    ("webhooks:\n  - name: a\n    format: slack\n",
     ":2:5: webhook a: `url`: `url` is missing: add it"),
    ("webhooks:\n  - url: https://x.example/\n    format: slack\n",
     "webhook #1: `name`: `name` is missing: add it"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: slack\n"
     "    events: [approval.requested, approval.exploded]\n",
     ":5:34: webhook a: `events.1`: 'approval.exploded' is not an event (known: approval."),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: json\n",
     "a `format: json` webhook needs `secret:`"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: json\n"
     "    secret: sEcReT-4f9a1c2e7b3d5a6c\n",
     "webhook a: `secret`: a secret is a reference, `{env: NAME}` or `{file: PATH}`; never "
     "write the secret itself in the notify file"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: xml\n",
     "webhook a: `format`: Input should be 'json' or 'slack'"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: slack\n"
     "    namespaces: ['finance.*.eu']\n", "namespace pattern 'finance.*.eu' is not"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: slack\n"
     "    retries: 3\n", "`retries` is not a webhook setting (known: name, url, format"),
    ("webhooks:\n  - name: a\n    url: https://x.example/\n    format: slack\n"
     "  - name: a\n    url: https://y.example/\n    format: slack\n",
     ":5:5: webhook a: the name is used twice"),
    ("webhooks:\n  - name: a\n    url: {env: A, file: /b}\n    format: slack\n",
     ":3:5: webhook a: `url`: a secret reference is `{env: NAME}` or `{file: PATH}`; "),
    ("webhooks:\n  - name: a\n    url: 42\n    format: slack\n",
     "webhook a: `url`: Input should be a valid string"),
    ("hooks: []\n", "a mapping with one key, `webhooks:`"),
    ("webhooks: [\n", "notify.yaml:2:1:"),
])
def test_a_hostile_notify_file_is_refused_with_located_problems(
        tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(text)
    with pytest.raises(NotifyConfigError) as caught:
        notify.load_webhooks(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(path.absolute()))


def test_a_weak_secret_and_a_missing_file_are_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAK", "short")
    with pytest.raises(NotifyConfigError, match="at least 16 random bytes"):
        notify.parse_webhooks("webhooks: [{name: a, url: 'https://x.example/', "
                              "secret: {env: WEAK}}]", "n.yaml")
    with pytest.raises(NotifyConfigError, match="does not exist: create it, or unset "
                                                "INTERLOCK_NOTIFY_FILE"):
        notify.load_webhooks(tmp_path / "nope.yaml")


def test_a_wrong_notify_file_never_fails_the_change_it_tells_about(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("webhooks: [{name: a, url: 'file:///x', format: slack}]\n")
    monkeypatch.setenv("INTERLOCK_NOTIFY_FILE", str(path))
    with caplog.at_level(logging.ERROR, logger="interlock.notify"):
        assert enqueue() == 0
        assert deliver_due() == notify.Round()
    assert "notify file is wrong" in caplog.text and "a webhook URL is http" in caplog.text


def test_the_notify_file_is_read_again_when_it_changes(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = configure(tmp_path, monkeypatch, json_hook("https://a.example/"))
    first = notify.load_webhooks()
    assert notify.load_webhooks() is first  # parsed once while unchanged
    configure(tmp_path, monkeypatch, json_hook("https://a.example/"),
              json_hook("https://b.example/", name="second"))
    assert len(notify.load_webhooks(path)) == 2
