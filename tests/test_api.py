"""The HTTP API end to end (embedded dispatch), on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from textwrap import dedent
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.routing import APIRoute

with warnings.catch_warnings():
    # Starlette warns (a UserWarning, not matched by pyproject's DeprecationWarning filter)
    # that its TestClient wants `httpx2`; the warning is about the test tool, not Interlock.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock.adapters.contract import Adapter, Handle, JobSpec, LogChunk, Observation
from interlock.adapters.registry import default_registry
from interlock.api.main import create_app
from interlock.errors import Rejected

API = "/api/v1"
TERMINAL = {"succeeded", "failed", "cancelled"}

SQUARE = dedent("""
    id: square
    namespace: tests.api
    inputs:
      n: {type: integer, required: true}
      label: {type: string, default: sq}
    nodes:
      a: {uses: noop, with: {v: "{{ inputs.n }}"}}
      b: {uses: noop, needs: [a], with: {sq: "{{ nodes.a.outputs.v * nodes.a.outputs.v }}",
                                          label: "{{ inputs.label }}"}}
""").lstrip()

# `b` fails when its `with:` renders (there is no such output), so `c` is skipped.
BROKEN = dedent("""
    id: broken
    namespace: tests.api
    nodes:
      a: {uses: noop, with: {v: 1}}
      b: {uses: noop, needs: [a], with: {w: "{{ nodes.a.outputs.missing }}"}}
      c: {uses: noop, needs: [b]}
""").lstrip()

SIMPLE = dedent("""
    id: simple
    namespace: tests.api
    nodes:
      only: {uses: noop, with: {x: 1}}
""").lstrip()


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        c.headers.update(bearer(name="tester"))
        yield c


def ok(response: httpx.Response, status: int) -> Any:
    """The JSON body, after checking the status (and showing the body when it is wrong)."""
    assert response.status_code != 500, response.text
    assert response.status_code == status, response.text
    return response.json()


def register(client: TestClient, source: str) -> dict[str, Any]:
    return ok(client.post(f"{API}/flows", json={"source": source}), 201)  # type: ignore[no-any-return]


def start(client: TestClient, flow_id: str, inputs: dict[str, Any] | None = None,
          namespace: str = "tests.api") -> str:
    body = ok(client.post(f"{API}/runs", json={"namespace": namespace, "flow_id": flow_id,
                                               "inputs": inputs or {}}), 201)
    return body["id"]  # type: ignore[no-any-return]


def wait(client: TestClient, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        detail = ok(client.get(f"{API}/runs/{run_id}"), 200)
        if detail["state"] in TERMINAL:
            return detail  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"run still {detail['state']}: {detail['nodes']}"
        time.sleep(0.05)


def by_id(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in detail["nodes"]}


# --- health and OpenAPI -------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    body = ok(client.get("/healthz"), 200)
    assert body["status"] == "ok"
    assert body["dispatch"] == "EmbeddedDispatcher"
    assert body["version"]


def test_openapi_lists_every_route_and_the_public_schemas(client: TestClient) -> None:
    spec = ok(client.get("/openapi.json"), 200)
    from interlock.api.routes import (
        approvals,
        audit,
        cron,
        dashboards,
        events,
        flows,
        lineage,
        login,
        me,
        policies,
        runs,
        stream,
        tokens,
        trace,
        webhooks,
    )
    routers = (runs.router, flows.router, events.router, webhooks.router, cron.router,
               trace.router, audit.router, dashboards.router, lineage.router, tokens.router,
               approvals.router, policies.router, me.router, stream.router, login.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    # OpenAPI writes a `{name:path}` parameter as `{name}`
    expected = {(API + r.path.replace(":path}", "}"), m.lower()) for r in routes for m in r.methods}
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert expected == {p for p in documented if p[0].startswith(API)}
    assert expected >= {
        (f"{API}/flows", "get"), (f"{API}/flows", "post"), (f"{API}/flows/validate", "post"),
        (f"{API}/flows/{{namespace}}/{{flow_id}}/revisions", "get"),
        (f"{API}/runs", "get"), (f"{API}/runs", "post"), (f"{API}/runs/{{run_id}}", "get"),
        (f"{API}/runs/{{run_id}}/events", "get"), (f"{API}/runs/{{run_id}}/cancel", "post"),
        (f"{API}/runs/{{run_id}}/retry", "post"), (f"{API}/runs/{{run_id}}/trace", "get"),
        (f"{API}/runs/{{run_id}}/nodes/{{node_id}}/logs", "get"),
        (f"{API}/events/{{kind}}", "post"),
        (f"{API}/webhooks/{{namespace}}/{{flow_id}}/{{key}}", "post"),
        (f"{API}/cron/jobs", "get"), (f"{API}/cron/jobs/{{host}}/{{job}}/checks", "get"),
        (f"{API}/audit", "get"), (f"{API}/audit/export", "get"), (f"{API}/audit/verify", "get"),
        (f"{API}/dashboards/runs", "get"), (f"{API}/dashboards/systems", "get"),
        (f"{API}/dashboards/flows", "get")}
    assert ("/healthz", "get") in documented and ("/metrics", "get") in documented
    schemas = spec["components"]["schemas"]
    assert {"RunDetail", "RunPage", "RunSummary", "NodePublic", "AttemptPublic",
            "ErrorBody", "EventAccepted"} <= set(schemas)
    assert "nodes" in schemas["RunDetail"]["properties"]
    assert "next_cursor" in schemas["RunPage"]["properties"]
    get_run = spec["paths"][f"{API}/runs/{{run_id}}"]["get"]
    assert get_run["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/RunDetail")
    assert "404" in get_run["responses"]


# --- flows --------------------------------------------------------------------------------


def test_register_flow_revisions_and_listing(client: TestClient) -> None:
    first = register(client, SIMPLE)
    assert (first["namespace"], first["id"], first["revision"]) == ("tests.api", "simple", 1)
    assert first["nodes"] == ["only"]
    again = register(client, SIMPLE)
    assert (again["revision"], again["digest"]) == (1, first["digest"])
    changed = register(client, SIMPLE.replace("x: 1", "x: 2"))
    assert changed["revision"] == 2 and changed["digest"] != first["digest"]
    register(client, SQUARE)

    flows = ok(client.get(f"{API}/flows"), 200)
    assert [(f["namespace"], f["id"], f["revision"]) for f in flows] == \
        [("tests.api", "simple", 2), ("tests.api", "square", 1)]
    revisions = ok(client.get(f"{API}/flows/tests.api/simple/revisions"), 200)
    assert [r["revision"] for r in revisions] == [1, 2]
    missing = ok(client.get(f"{API}/flows/tests.api/nope/revisions"), 404)
    assert missing["detail"] == "flow `tests.api/nope` is not registered"


def test_validate_reports_located_problems(client: TestClient) -> None:
    bad = "id: v\nnodes:\n  a: {uses: nope}\n  b: {uses: noop, needs: [ghost]}\n"
    body = ok(client.post(f"{API}/flows/validate", json={"source": bad, "file": "f.yaml"}), 200)
    assert body["valid"] is False
    assert len(body["problems"]) == 2
    for problem in body["problems"]:
        assert problem["file"] == "f.yaml"
        assert isinstance(problem["line"], int) and isinstance(problem["col"], int)
        assert problem["message"]
    lines = sorted((p["line"], p["message"]) for p in body["problems"])
    assert lines[0][0] == 3 and "nope" in lines[0][1]
    assert lines[1][0] == 4 and "ghost" in lines[1][1]
    good = ok(client.post(f"{API}/flows/validate", json={"source": SIMPLE}), 200)
    assert good == {"valid": True, "problems": []}
    yaml_error = ok(client.post(f"{API}/flows/validate", json={"source": "id: [\n"}), 200)
    assert yaml_error["valid"] is False and "YAML" in yaml_error["problems"][0]["message"]


def test_registering_an_invalid_flow_is_422_with_problems(client: TestClient) -> None:
    body = ok(client.post(f"{API}/flows", json={"source": "id: x\nnodes: {a: {uses: nope}}\n"}),
              422)
    assert body["detail"] == "the flow has 1 problem(s)"
    assert body["problems"][0]["line"] == 2 and body["problems"][0]["col"] > 1
    assert "unknown `uses: nope`" in body["problems"][0]["message"]
    assert ok(client.get(f"{API}/flows"), 200) == []  # nothing stored


def test_flow_source_too_large_is_422(client: TestClient) -> None:
    body = ok(client.post(f"{API}/flows", json={"source": "#" * 1_000_001}), 422)
    assert body["problems"][0]["loc"] == ["body", "source"]


def test_flow_namespace_longer_than_the_store_allows_is_a_spec_problem(
        client: TestClient) -> None:
    source = f"id: x\nnamespace: {'n' * 300}\nnodes: {{a: {{uses: noop}}}}\n"
    body = ok(client.post(f"{API}/flows", json={"source": source}), 422)
    assert "namespace" in body["problems"][0]["message"]


# --- runs ---------------------------------------------------------------------------------


def test_start_run_and_poll_until_it_succeeds(client: TestClient) -> None:
    register(client, SQUARE)
    created = ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "square",
                                                  "inputs": {"n": 7}}), 201)
    assert created["state"] in {"pending", "running", "succeeded"}  # it may be quick
    assert created["inputs"] == {"n": 7, "label": "sq"}  # default filled in
    assert [n["id"] for n in created["nodes"]] == ["a", "b"]
    assert created["trigger"] == {"type": "api", "by": "user:tester"}  # who started it
    done = wait(client, created["id"])
    assert done["state"] == "succeeded"
    assert done["finished_at"] is not None and done["created_at"].endswith("Z")
    nodes = by_id(done)
    assert nodes["a"]["outputs"] == {"v": 7}
    assert nodes["b"]["outputs"] == {"sq": 49, "label": "sq"}
    for node in done["nodes"]:
        assert node["state"] == "succeeded"
        assert node["uses"] == "noop"
        [attempt] = node["attempts"]
        assert attempt["number"] == 1 and attempt["state"] == "succeeded"
        assert attempt["key"] == f"{done['id']}.{node['id']}.1"
        assert attempt["handle"]["kind"] == "noop"
        assert attempt["handle"]["external_id"] == attempt["key"]
        assert attempt["outputs"] == node["outputs"]


@pytest.mark.parametrize(("inputs", "name", "fragment"), [
    ({"n": "3"}, "n", "expected integer, got str"),
    ({"n": True}, "n", "expected integer, got a boolean"),
    ({"n": 1.5}, "n", "expected integer, got float"),
    ({"n": 1, "label": 5}, "label", "expected string, got int"),
    ({}, "n", "required integer input is missing"),
    ({"n": 1, "colour": "red"}, "colour", "the flow declares no such input (declared: label, n)"),
])
def test_bad_inputs_are_422_naming_the_input(client: TestClient, inputs: dict[str, Any],
                                             name: str, fragment: str) -> None:
    register(client, SQUARE)
    body = ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "square",
                                               "inputs": inputs}), 422)
    assert f"input `{name}`" in body["detail"]
    problems = {p["input"]: p["message"] for p in body["problems"]}
    assert fragment in problems[name]
    assert ok(client.get(f"{API}/runs"), 200)["runs"] == []  # no run was created


def test_unknown_flow_or_revision_is_404(client: TestClient) -> None:
    body = ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "ghost"}), 404)
    assert body["detail"] == "flow `tests.api/ghost` is not registered"
    register(client, SIMPLE)
    body = ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "simple",
                                               "revision": 4}), 404)
    assert body["detail"] == "flow `tests.api/simple` revision 4 is not registered"
    ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "simple",
                                        "revision": 0}), 422)


def test_start_pinned_revision(client: TestClient) -> None:
    register(client, SIMPLE)
    register(client, SIMPLE.replace("x: 1", "x: 2"))
    run_id = ok(client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "simple",
                                                 "revision": 1}), 201)["id"]
    done = wait(client, run_id)
    assert done["revision"] == 1 and by_id(done)["only"]["outputs"] == {"x": 1}
    latest = wait(client, start(client, "simple"))
    assert latest["revision"] == 2 and by_id(latest)["only"]["outputs"] == {"x": 2}


def test_huge_revision_number_is_not_a_500(client: TestClient, store_url: str) -> None:
    register(client, SIMPLE)
    response = client.post(f"{API}/runs", json={"namespace": "tests.api", "flow_id": "simple",
                                                "revision": 2**40})
    assert response.status_code in {404, 422}, response.text


def test_list_runs_filters_and_pagination(client: TestClient) -> None:
    register(client, SIMPLE)
    register(client, BROKEN)
    register(client, SIMPLE.replace("namespace: tests.api", "namespace: tests.other"))
    simple = [start(client, "simple") for _ in range(5)]
    broken = start(client, "broken")
    other = start(client, "simple", namespace="tests.other")
    for run_id in [*simple, broken, other]:
        wait(client, run_id)
    newest_first = [other, broken, *reversed(simple)]

    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = ok(client.get(f"{API}/runs", params=params), 200)
        pages.append([r["id"] for r in page["runs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [rid for p in pages for rid in p]
    assert flat == newest_first  # no duplicates, no gaps, newest first

    def ids(**params: Any) -> list[str]:
        return [r["id"] for r in ok(client.get(f"{API}/runs", params=params), 200)["runs"]]

    assert ids(state="failed") == [broken]
    assert ids(state="succeeded") == [other, *reversed(simple)]
    assert ids(state="cancelled") == []
    assert ids(namespace="tests.other") == [other]
    assert ids(flow_id="broken") == [broken]
    assert ids(namespace="tests.api", flow_id="simple") == list(reversed(simple))
    # created_after is inclusive, and honours the offset it is written with.
    third = ok(client.get(f"{API}/runs/{simple[2]}"), 200)
    at = datetime.fromisoformat(third["created_at"])
    plus5 = at.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert "+05:00" in plus5
    assert ids(created_after=plus5) == [other, broken, simple[4], simple[3], simple[2]]
    assert ids(created_after=plus5, state="succeeded", limit=2) == [other, simple[4]]
    assert ids(created_before=third["created_at"]) == [simple[1], simple[0]]
    # A filtered walk pages too.
    page = ok(client.get(f"{API}/runs", params={"flow_id": "simple", "namespace": "tests.api",
                                                "limit": 4}), 200)
    rest = ok(client.get(f"{API}/runs", params={"flow_id": "simple", "namespace": "tests.api",
                                                "limit": 4, "cursor": page["next_cursor"]}), 200)
    assert [r["id"] for r in page["runs"] + rest["runs"]] == list(reversed(simple))
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("params", [
    {"created_after": "2024-01-01T00:00:00"},
    {"created_before": "2024-01-01T10:00:00"},
])
def test_naive_datetime_filter_is_400(client: TestClient, params: dict[str, str]) -> None:
    body = ok(client.get(f"{API}/runs", params=params), 400)
    assert "has no time zone" in body["detail"]


@pytest.mark.parametrize("cursor", ["!!!", "YWJj", "bm90LWEtZGF0ZXxhYmM="])
def test_bad_cursor_is_400(client: TestClient, cursor: str) -> None:
    body = ok(client.get(f"{API}/runs", params={"cursor": cursor}), 400)
    assert "bad cursor" in body["detail"] and "next_cursor" in body["detail"]


def test_cursor_with_naive_time_is_400(client: TestClient) -> None:
    cursor = base64.urlsafe_b64encode(b"2024-01-01T00:00:00|abc").decode()
    body = ok(client.get(f"{API}/runs", params={"cursor": cursor}), 400)
    assert "bad cursor" in body["detail"]


def test_out_of_range_datetime_filter_is_400(client: TestClient) -> None:
    response = client.get(f"{API}/runs", params={"created_after": "0001-01-01T00:00:00+05:00"})
    assert response.status_code in {400, 422}, response.text


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"state": "sleeping"}, "state"),
    ({"created_after": "yesterday"}, "created_after"), ({"cursor": "c" * 501}, "cursor"),
])
def test_malformed_list_params_are_422(client: TestClient, params: dict[str, Any],
                                       field: str) -> None:
    body = ok(client.get(f"{API}/runs", params=params), 422)
    assert body["problems"][0]["loc"] == ["query", field]


def test_nul_character_in_request_is_not_a_500(client: TestClient, store_url: str) -> None:
    list_response = client.get(f"{API}/runs", params={"namespace": "a\x00b"})
    get_response = client.get(f"{API}/runs/a%00b")
    assert list_response.status_code in {200, 400, 422}, list_response.text
    assert get_response.status_code in {400, 404, 422}, get_response.text


# --- cancel, retry, events, logs ----------------------------------------------------------


def test_cancel_finished_run_is_409_and_unknown_is_404(client: TestClient) -> None:
    register(client, SIMPLE)
    run_id = start(client, "simple")
    assert wait(client, run_id)["state"] == "succeeded"
    body = ok(client.post(f"{API}/runs/{run_id}/cancel"), 409)
    assert body["detail"] == (f"run `{run_id}` is succeeded; only pending or running runs can "
                              "be cancelled")
    assert ok(client.get(f"{API}/runs/{run_id}"), 200)["state"] == "succeeded"
    body = ok(client.post(f"{API}/runs/nope/cancel"), 404)
    assert body["detail"] == "run `nope` does not exist"
    assert ok(client.get(f"{API}/runs/nope"), 404)["detail"] == "run `nope` does not exist"
    assert ok(client.get(f"{API}/runs/nope/events"), 404)["detail"] == "run `nope` does not exist"


def test_retry_of_succeeded_or_unknown_run(client: TestClient) -> None:
    register(client, SIMPLE)
    run_id = start(client, "simple")
    wait(client, run_id)
    body = ok(client.post(f"{API}/runs/{run_id}/retry"), 409)
    assert "only failed or cancelled runs can be retried" in body["detail"]
    ok(client.post(f"{API}/runs/nope/retry"), 404)


def test_retry_failed_run_reopens_failed_and_skipped_nodes(client: TestClient) -> None:
    register(client, BROKEN)
    run_id = start(client, "broken")
    failed = wait(client, run_id)
    assert failed["state"] == "failed" and failed["reason"] == "failed: b"
    nodes = by_id(failed)
    assert [nodes[n]["state"] for n in "abc"] == ["succeeded", "failed", "skipped"]
    assert nodes["b"]["reason"] == "`with:` failed to render"
    assert "has no attribute 'missing'" in nodes["b"]["error"]
    assert nodes["c"]["reason"] == "upstream `b` failed"

    accepted = ok(client.post(f"{API}/runs/{run_id}/retry"), 202)
    assert accepted == {"id": run_id, "detail": "retry started", "nodes": ["b", "c"]}
    again = wait(client, run_id)
    assert again["state"] == "failed" and again["reason"] == "failed: b"
    nodes = by_id(again)
    assert nodes["b"]["error"] == failed["nodes"][1]["error"]  # the same cause
    assert len(nodes["a"]["attempts"]) == 1  # kept, not re-run
    assert nodes["b"]["attempts"] == []  # a render failure starts no attempt

    events = ok(client.get(f"{API}/runs/{run_id}/events"), 200)
    b_events = [(e["from_state"], e["to_state"], e["actor"]) for e in events
                if e["node_id"] == "b" and e["entity"] == "node"]
    assert b_events == [("pending", "failed", "planner"), ("failed", "pending", "user:tester"),
                        ("pending", "failed", "planner")]
    runs = [(e["from_state"], e["to_state"]) for e in events if e["entity"] == "run"]
    assert runs == [(None, "pending"), ("pending", "running"), ("running", "failed"),
                    ("failed", "pending"), ("pending", "running"), ("running", "failed")]


class RefusingAdapter(Adapter):
    """Refuses every job, so each attempt fails at submit with a handle and a log."""

    kind: ClassVar[str] = "test_api_refuses"

    def submit(self, job: JobSpec, *, key: str) -> Observation:
        raise Rejected(f"refused attempt {job.attempt}")

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return []

    def cancel(self, handle: Handle) -> None:
        return None

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        return LogChunk(text=f"log of {handle.external_id}\n")


@pytest.fixture
def refusing_adapter() -> Iterator[str]:
    registry = default_registry()
    registry.register(RefusingAdapter)
    yield RefusingAdapter.kind
    registry._classes.pop(RefusingAdapter.kind, None)
    registry._instances.pop(RefusingAdapter.kind, None)


def test_retry_of_a_failed_attempt_records_attempt_two(client: TestClient,
                                                       refusing_adapter: str) -> None:
    register(client, dedent(f"""
        id: refused
        namespace: tests.api
        nodes:
          a: {{uses: noop, with: {{v: 1}}}}
          b: {{uses: {refusing_adapter}, needs: [a]}}
    """).lstrip())
    run_id = start(client, "refused")
    failed = wait(client, run_id)
    assert failed["state"] == "failed"
    b = by_id(failed)["b"]
    assert b["state"] == "failed" and "refused attempt 1" in b["error"]
    assert ok(client.post(f"{API}/runs/{run_id}/retry"), 202)["nodes"] == ["b"]
    again = wait(client, run_id)
    assert again["state"] == "failed"
    b = by_id(again)["b"]
    assert [a["number"] for a in b["attempts"]] == [1, 2]
    assert [a["state"] for a in b["attempts"]] == ["failed", "failed"]
    assert len({a["key"] for a in b["attempts"]}) == 2
    assert "refused attempt 2" in b["attempts"][1]["error"]
    assert len(by_id(again)["a"]["attempts"]) == 1
    logs = ok(client.get(f"{API}/runs/{run_id}/nodes/b/logs"), 200)
    assert logs["attempt"] == 2 and logs["text"] == f"log of {b['attempts'][1]['key']}\n"
    first = ok(client.get(f"{API}/runs/{run_id}/nodes/b/logs", params={"attempt": 1}), 200)
    assert first["text"] == f"log of {b['attempts'][0]['key']}\n"
    assert "has no attempt 3" in ok(client.get(f"{API}/runs/{run_id}/nodes/b/logs",
                                               params={"attempt": 3}), 404)["detail"]


def test_events_list_run_node_and_attempt_transitions_with_actors(client: TestClient) -> None:
    register(client, SIMPLE)
    run_id = start(client, "simple")
    wait(client, run_id)
    events = ok(client.get(f"{API}/runs/{run_id}/events"), 200)
    assert all(e["actor"] for e in events)
    assert [(e["entity"], e["to_state"]) for e in events if e["entity"] == "run"] == \
        [("run", "pending"), ("run", "running"), ("run", "succeeded")]
    assert events[0]["actor"] == "user:tester" and events[0]["from_state"] is None
    node = [(e["from_state"], e["to_state"]) for e in events if e["entity"] == "node"]
    assert node == [("pending", "queued"), ("queued", "succeeded")]
    attempt = [e for e in events if e["entity"] == "attempt"]
    assert [(e["node_id"], e["attempt"], e["to_state"], e["actor"]) for e in attempt] == \
        [("only", 1, "succeeded", "executor")]
    assert all(e["at"].endswith("Z") for e in events)


def test_node_logs(client: TestClient) -> None:
    register(client, BROKEN)
    run_id = start(client, "broken")
    wait(client, run_id)
    logs = ok(client.get(f"{API}/runs/{run_id}/nodes/a/logs"), 200)
    assert logs == {"run_id": run_id, "node_id": "a", "attempt": 1, "text": "", "cursor": None,
                    "truncated": False}
    body = ok(client.get(f"{API}/runs/{run_id}/nodes/zz/logs"), 404)
    assert body["detail"] == f"run `{run_id}` has no node `zz` (nodes: a, b, c)"
    body = ok(client.get(f"{API}/runs/{run_id}/nodes/b/logs"), 404)
    assert "node `b`" in body["detail"] and "has no attempt" in body["detail"]
    ok(client.get(f"{API}/runs/nope/nodes/a/logs"), 404)
    ok(client.get(f"{API}/runs/{run_id}/nodes/a/logs", params={"attempt": 0}), 422)


# --- malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/flows", f"{API}/flows/validate"])
def test_bad_json_body_is_422(client: TestClient, path: str) -> None:
    body = ok(client.post(path, content=b"{not json",
                          headers={"content-type": "application/json"}), 422)
    assert body["problems"][0]["type"] == "json_invalid"
    body = ok(client.post(path, json=["a", "list"]), 422)
    assert body["detail"]


def test_wrongly_shaped_run_body_is_422(client: TestClient) -> None:
    assert ok(client.post(f"{API}/runs", json={"namespace": "x"}), 422)["problems"][0]["loc"] == \
        ["body", "flow_id"]
    assert ok(client.post(f"{API}/runs", json={"flow_id": "x", "inputs": [1]}),
              422)["problems"][0]["loc"] == ["body", "inputs"]


def test_extremely_long_identifiers(client: TestClient) -> None:
    body = ok(client.post(f"{API}/runs", json={"flow_id": "f" * 100_000}), 422)
    assert body["problems"][0]["loc"] == ["body", "flow_id"]
    body = ok(client.post(f"{API}/runs", json={"flow_id": "f", "namespace": "n" * 5000}), 422)
    assert body["problems"][0]["loc"] == ["body", "namespace"]
    ok(client.get(f"{API}/runs", params={"flow_id": "f" * 5000}), 422)
    long_id = "r" * 5000
    assert ok(client.get(f"{API}/runs/{long_id}"), 404)["detail"] == \
        f"run `{long_id}` does not exist"
    ok(client.get(f"{API}/flows/ns/{'f' * 5000}/revisions"), 404)


def test_idempotency_key_replays_the_run_and_hostile_keys_are_refused(
        client: TestClient) -> None:
    register(client, SQUARE)
    body = {"namespace": "tests.api", "flow_id": "square", "inputs": {"n": 3}}
    first = client.post(f"{API}/runs", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post(f"{API}/runs", json=body, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = client.post(f"{API}/runs", json={**body, "inputs": {"n": 4}},
                        headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and "other inputs" in other.text
    for hostile in ("x" * 201, "has space", "tab\there", ""):
        refused = client.post(f"{API}/runs", json=body, headers={"Idempotency-Key": hostile})
        assert refused.status_code == 422, (hostile[:20], refused.text)
