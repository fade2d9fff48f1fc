"""OpenTelemetry export of finished runs: the spans made from a run's trace (checked with
the SDK's in-memory exporter), and the real OTLP/HTTP path: with
`OTEL_EXPORTER_OTLP_ENDPOINT` set, a run that ends is sent by the SDK's OTLP exporter to
a receiver on loopback that decodes the protobuf request (`opentelemetry-proto`), and a
receiver that refuses keeps the outbox row until it takes them.

No OpenTelemetry Collector can be installed here (no package on PyPI or npm carries it):
the receiver below is the OTLP/HTTP protocol itself, decoded by the project's own proto
classes, not a stand-in for the exporter."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

pytest.importorskip("opentelemetry.sdk", reason="pip install -e '.[dev]' (the otel extra)")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

from interlock.access import tokens  # noqa: E402
from interlock.access.permissions import Role  # noqa: E402
from interlock.access.principals import Principal  # noqa: E402
from interlock.dispatch.embedded import EmbeddedDispatcher  # noqa: E402
from interlock.dispatch.tracing import traceparent  # noqa: E402
from interlock.errors import Transient  # noqa: E402
from interlock.operations import approvals as approval_ops  # noqa: E402
from interlock.operations import runs as ops  # noqa: E402
from interlock.store.approvals import RequestFilter  # noqa: E402
from interlock.store.db import session_scope  # noqa: E402
from interlock.store.tables import Attempt, Outbox, TaskKind  # noqa: E402
from interlock.telemetry import sender, settings  # noqa: E402
from interlock.telemetry.export import export_run  # noqa: E402
from interlock.trace import SpanKind, trace_run  # noqa: E402
from tests.helpers import wait_run  # noqa: E402

NS = "tests.otel"
FLOW = dedent(f"""
    id: nightly
    namespace: {NS}
    nodes:
      extract: {{uses: noop, with: {{rows: 3}}}}
      load:
        uses: script
        needs: [extract]
        with: {{command: ["sh", "-c", "echo loading; exit 3"]}}
      report: {{uses: noop, needs: [load]}}
""")
GATED = dedent(f"""
    id: payout
    namespace: {NS}
    nodes:
      pay:
        uses: noop
        approval: {{subject: "Pay?", rules: [{{group: finance, count: 1}}]}}
""")


def _run(embedded: EmbeddedDispatcher, source: str) -> str:
    flow, _ = ops.register(source, actor="user:author")
    run_id = ops.start_run(namespace=NS, flow_id=flow.id, inputs={}, dispatcher=embedded,
                           actor="user:starter")
    return run_id


def person(name: str, *groups: str) -> Principal:
    with session_scope() as session:
        token, _ = tokens.create(session, name=name, role=Role.APPROVER, namespace=NS,
                                 created_by="tests", groups=groups)
        principal, _ = tokens.authenticate(session, token)
    return principal


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_a_failed_run_becomes_spans_with_its_trace_id_and_the_attempts_parent_ids(
        embedded: EmbeddedDispatcher) -> None:
    run_id = _run(embedded, FLOW)
    run = wait_run(run_id)
    assert run.state.value == "failed"
    memory = InMemorySpanExporter()
    sent = export_run(run_id, memory)
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert sent == len(spans) == 3  # the run and its two attempts (report was skipped)
    root = spans[f"run {NS}/nightly"]
    assert root.parent is None and _hex(root.context.trace_id, 32) == run.trace_id
    assert root.status.status_code is StatusCode.ERROR
    with session_scope() as session:
        key = session.scalar(select(Attempt.key).where(Attempt.run_id == run_id,
                                                       Attempt.node_id == "load"))
    load = spans["node load attempt 1"]
    # The span id the script was given as TRACEPARENT's parent is the attempt's span id.
    assert f"-{_hex(load.context.span_id, 16)}-" in traceparent(run.trace_id, str(key))
    assert load.parent is not None and load.parent.span_id == root.context.span_id
    assert load.status.status_code is StatusCode.ERROR and "exit code 3" in str(
        load.status.description)
    assert load.attributes["interlock.adapter"] == "script"
    assert load.attributes["interlock.run.id"] == run_id
    assert spans["node extract attempt 1"].status.status_code is StatusCode.UNSET
    assert all(s.start_time <= s.end_time for s in spans.values())
    assert root.start_time <= load.start_time and load.end_time <= root.end_time
    # Sent again, the same spans: a collector keeps one of each.
    again = InMemorySpanExporter()
    export_run(run_id, again)
    assert {(s.context.span_id, s.name) for s in again.get_finished_spans()} == \
        {(s.context.span_id, s.name) for s in spans.values()}


def test_a_gates_wait_for_people_is_a_span_of_its_own(embedded: EmbeddedDispatcher) -> None:
    run_id = _run(embedded, GATED)
    deadline = time.monotonic() + 20
    while not (asked := approval_ops.list_requests(filters=RequestFilter(run_id=run_id))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    approval_ops.vote(asked[0]["id"], principal=person("fay", "finance"), option="approve",
                      inputs={}, comment="ok", dispatcher=embedded)
    assert wait_run(run_id).state.value == "succeeded"
    memory = InMemorySpanExporter()
    export_run(run_id, memory)
    wait = next(s for s in memory.get_finished_spans() if s.name == "approval wait pay")
    assert wait.attributes["interlock.approval.id"] == asked[0]["id"]
    assert wait.attributes["interlock.state"] == "approved"
    assert wait.end_time - wait.start_time >= 250_000_000  # it waited the 0.3 s above
    # The same wait is a span of the run's own trace (the console's timeline draws it).
    (gate,) = [s for s in trace_run(run_id).spans if s.kind is SpanKind.APPROVAL]
    assert (gate.id, gate.parent_id, gate.node_id, gate.state) == \
        (f"approval:{asked[0]['id']}", f"run:{run_id}", "pay", "approved")
    assert gate.started_at is not None and gate.finished_at is not None
    assert wait.start_time == int(gate.started_at.timestamp() * 1e9)


class Receiver:
    """An OTLP/HTTP endpoint on loopback: POST /v1/traces with an ExportTraceServiceRequest
    (protobuf); answers `status` (200, or a refusal)."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                if receiver.status == 200:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    receiver.requests.append(request)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        return [span for request in self.requests for resource in request.resource_spans
                for scope in resource.scope_spans for span in scope.spans]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    settings.enabled.cache_clear()
    sender.exporter.cache_clear()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    settings.enabled.cache_clear()
    sender.exporter.cache_clear()


def test_a_finished_run_reaches_a_real_otlp_http_endpoint(
        receiver: Receiver, embedded: EmbeddedDispatcher) -> None:
    run_id = _run(embedded, FLOW)
    run = wait_run(run_id)
    deadline = time.monotonic() + 15
    while len(receiver.spans()) < 3:
        assert time.monotonic() < deadline, "the run's spans never arrived"
        time.sleep(0.05)
    spans = receiver.spans()
    assert {s.trace_id.hex() for s in spans} == {run.trace_id}
    assert {s.name for s in spans} == {f"run {NS}/nightly", "node extract attempt 1",
                                       "node load attempt 1"}
    resource = receiver.requests[0].resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == \
        "interlock"
    while _export_rows(run_id):  # delivered: nothing left to send (done just after)
        assert time.monotonic() < deadline, "the EXPORT work was never completed"
        time.sleep(0.05)


def _export_rows(run_id: str) -> list[Outbox]:
    with session_scope() as session:
        return list(session.scalars(select(Outbox).where(
            Outbox.kind == TaskKind.EXPORT.value, Outbox.run_id == run_id)))


def test_a_refusing_collector_keeps_the_work_until_it_takes_the_spans(
        receiver: Receiver, embedded: EmbeddedDispatcher) -> None:
    receiver.status = 400  # refused (not a retryable status: the exporter gives up at once)
    run_id = _run(embedded, FLOW)
    wait_run(run_id)
    time.sleep(0.5)
    with pytest.raises(Transient):
        sender.send(run_id)
    assert len(_export_rows(run_id)) == 1
    receiver.status = 200
    assert sender.send(run_id) == 3  # what the reconciler does after the row's lease
    assert len(receiver.spans()) == 3
    assert _export_rows(run_id) == []


def test_without_the_variables_nothing_is_scheduled(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings.ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    assert not settings.wanted()
    assert settings.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not settings.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
                                "OTEL_TRACES_EXPORTER": "none"})
    assert not settings.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
                                "OTEL_SDK_DISABLED": "true"})
