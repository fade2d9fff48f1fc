"""The audit keeps facts, not payloads (issue 13, point 5).

Real signed pushes (a cron job's report, Airflow-shaped events), a failing script node, a
run with oversized and deeply nested inputs, and refused pushes, webhooks and requests go
through the API; then the exported trail must hold none of their distinctive values, but
the sha256 + size of each, and a record of every refusal.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.access.permissions import Role
from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.config.env import settings
from interlock.store.facts import MAX_DEPTH, MAX_VALUE_BYTES

API = "/api/v1"
SECRET = "payload-test-" + uuid.uuid4().hex
HOOK_SECRET = "payload-hook-" + uuid.uuid4().hex
MAX_BODY = 64 * 1024
# Distinctive values: none may appear anywhere in the exported trail.
TAIL = "TAIL-d1b7-customer-card-4111111111111111"
CONF = "CONF-9c2e-s3cr3t-password"
PUSHED_ERROR = "PUSHEDERR-77aa-row-of-personal-data"
SCRIPT_ERROR = "SCRIPTERR-5f3c-stack-with-token"
BIG_INPUT = "BIGINPUT-0e41-"
DEEP_INPUT = "DEEPINPUT-a2c9-leaf"
FORGED = "FORGED-31d0-body"
REPLAYED = "REPLAYED-6b8e-conf"
TOO_LARGE = "TOOLARGE-c4f2-"
HOOK_BODY = "HOOKBODY-8e17-value"
DENIED = "DENIED-2a9b-input"
SECRETS = (TAIL, CONF, PUSHED_ERROR, SCRIPT_ERROR, BIG_INPUT, DEEP_INPUT, FORGED, REPLAYED,
           TOO_LARGE, HOOK_BODY, DENIED)

FLOW = dedent(f"""
    id: payloads
    namespace: tests.payloads
    inputs:
      blob: {{type: string, default: ""}}
      tree: {{type: object, default: {{}}}}
    triggers:
      - webhook: {{key: signed, secret: {{env: PAYLOAD_HOOK_SECRET}}}}
    nodes:
      fail:
        uses: script
        with:
          command: "echo {SCRIPT_ERROR} >&2; echo '{SCRIPT_ERROR} here' >> $INTERLOCK_OUTPUT"
""").lstrip()


@pytest.fixture
def client(embedded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          airflow/test:
            url: http://127.0.0.1:9
            events_secret: {env: PAYLOAD_EVENTS_SECRET}
          cron/payloadhost:
            events_secret: {env: PAYLOAD_EVENTS_SECRET}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("PAYLOAD_EVENTS_SECRET", SECRET)
    monkeypatch.setenv("PAYLOAD_HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("INTERLOCK_MAX_BODY_BYTES", str(MAX_BODY))
    settings.cache_clear()
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        assert c.post(f"{API}/flows", json={"source": FLOW}).status_code == 201
        yield c
    settings.cache_clear()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_fact(value: Any) -> dict[str, Any]:
    """A fact computed here, independently of `store.facts`: canonical JSON's hash + size."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return {"sha256": sha(data), "bytes": len(data)}


def text_fact(text: str) -> dict[str, Any]:
    return {"sha256": sha(text.encode()), "bytes": len(text.encode())}


def push(client: TestClient, kind: str, payload: dict[str, Any], *, secret: str = SECRET,
         headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(payload).encode()
    signed = headers or signing.sign(secret, body)
    return client.post(f"{API}/events/{kind}", content=body,
                       headers={"Content-Type": "application/json", **signed})


def cron_report(tail: str, run: str | None = None) -> dict[str, Any]:
    return {"system": "cron/payloadhost", "job": "backup", "run": run or uuid.uuid4().hex,
            "event": "finish", "host": "payloadhost", "pid": 42, "user": "root",
            "started_at": "2026-11-24T06:00:00+00:00", "ended_at": "2026-11-24T06:00:05+00:00",
            "exit_code": 1, "signal": None, "duration_s": 5.0, "output_tail": tail}


def airflow_event(conf: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "system": "airflow/test", "kind": "dag_run",
            "state": "failed", "dag_id": "ingest", "run_id": "r-" + uuid.uuid4().hex,
            "run_type": "manual", "start_date": "2026-11-24T06:00:00+00:00",
            "end_date": "2026-11-24T06:01:00+00:00", "conf": conf, "error": None, **extra}


def deep(levels: int, leaf: str) -> Any:
    value: Any = leaf
    for i in range(levels):
        value = {f"l{levels - i}": value}
    return value


def export(client: TestClient) -> tuple[str, list[dict[str, Any]]]:
    response = client.get(f"{API}/audit/export")
    assert response.status_code == 200, response.text
    return response.text, [json.loads(line) for line in response.text.splitlines() if line]


def records(lines: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [r for r in lines if r["action"] == action]


def test_the_audit_keeps_facts_not_payloads(client: TestClient) -> None:
    # Accepted pushes: a cron job's output, an Airflow conf, a foreign error text.
    tail = f"line 1\n{TAIL}\n" + "x" * 3000
    assert push(client, "cron", cron_report(tail)).status_code == 202
    conf = {"interlock": {"trace": "t1"}, "password": CONF}
    assert push(client, "airflow", airflow_event(conf)).status_code == 202
    task = airflow_event({"k": CONF}, kind="task_instance", task_id="load",
                         error=f"Traceback: {PUSHED_ERROR}")
    assert push(client, "airflow", task).status_code == 202

    # A failing script node: its error stays in the run store, not in the trail.
    started = client.post(f"{API}/runs", json={"namespace": "tests.payloads",
                                               "flow_id": "payloads"})
    assert started.status_code in (201, 202), started.text
    failed = wait_run(started.json()["id"])
    assert failed.state.value == "failed"
    assert SCRIPT_ERROR in (failed.nodes[0].error or "")  # the store has it: a real test

    # A run with an oversized and a deeply nested input.
    big = BIG_INPUT + "y" * (2 * MAX_VALUE_BYTES)
    tree = {"shallow": 1, "deep": deep(MAX_DEPTH + 3, DEEP_INPUT)}
    sized = client.post(f"{API}/runs", json={"namespace": "tests.payloads",
                                             "flow_id": "payloads",
                                             "inputs": {"blob": big, "tree": tree}})
    assert sized.status_code in (201, 202), sized.text
    sized_id = sized.json()["id"]
    wait_run(sized_id)

    # Refusals: forged, replayed, too large, malformed; a wrongly signed webhook; a denial.
    forged = cron_report(FORGED)
    forged_body = json.dumps(forged).encode()
    assert push(client, "cron", forged, secret="not-the-secret").status_code == 401
    replayed = airflow_event({"v": REPLAYED})
    body = json.dumps(replayed).encode()
    signature = signing.sign(SECRET, body)
    assert push(client, "airflow", replayed, headers=signature).status_code == 202
    assert push(client, "airflow", replayed, headers=signature).status_code == 401
    huge = cron_report(TOO_LARGE + "z" * MAX_BODY)
    huge_body = json.dumps(huge).encode()
    assert push(client, "cron", huge).status_code == 413
    overlong = cron_report(TOO_LARGE + "w" * 20_000)  # within the body limit, past the field's
    assert push(client, "cron", overlong).status_code == 422
    hook_body = json.dumps({"blob": HOOK_BODY}).encode()
    hook = client.post(f"{API}/webhooks/tests.payloads/payloads/signed", content=hook_body,
                       headers={"Content-Type": "application/json",
                                "X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert hook.status_code == 401
    viewer = client.post(f"{API}/runs", headers=bearer(Role.VIEWER),
                         json={"namespace": "tests.payloads", "flow_id": "payloads",
                               "inputs": {"blob": DENIED}})
    assert viewer.status_code == 403

    text, lines = export(client)
    leaked = [s for s in SECRETS if s in text]
    assert leaked == [], f"payloads copied into the audit trail: {leaked}"
    assert client.get(f"{API}/audit/verify").json()["ok"] is True

    accepted = records(lines, "event.accepted")
    cron = next(r for r in accepted if r["target"].startswith("cron/payloadhost/"))
    assert cron["after"]["output_tail"] == text_fact(tail)
    assert (cron["after"]["exit_code"], cron["after"]["event"]) == (1, "finish")  # facts kept
    runs = [r for r in accepted if r["target"].startswith("airflow/test/ingest/")]
    assert runs[0]["after"]["conf"] == json_fact(conf)
    assert runs[0]["after"]["state"] == "failed" and runs[0]["after"]["error"] is None
    assert runs[1]["after"]["error"] == text_fact(f"Traceback: {PUSHED_ERROR}")
    assert runs[1]["after"]["task_id"] == "load"

    created = next(r for r in records(lines, "run.created") if r["target"] == f"runs/{sized_id}")
    inputs = created["after"]["inputs"]
    assert inputs["blob"] == text_fact(big)
    assert inputs["tree"]["shallow"] == 1  # small and shallow: kept as it is
    kept, given = inputs["tree"]["deep"], tree["deep"]
    for level in range(1, MAX_DEPTH - 1):  # `tree` and `deep` are two of the levels kept
        kept, given = kept[f"l{level}"], given[f"l{level}"]
    assert kept == json_fact(given), kept  # the last level is the fact of what is below

    refused = records(lines, "event.refused")
    by_reason = {r["after"]["reason"]: r for r in refused}
    assert len(refused) == 4, [r["after"] for r in refused]
    forged_rec = next(r for reason, r in by_reason.items() if "signature" in reason)
    assert forged_rec["actor"] == "unverified:cron/payloadhost"
    assert forged_rec["after"]["body"] == {"sha256": sha(forged_body), "bytes": len(forged_body)}
    replay_rec = next(r for reason, r in by_reason.items() if "replayed" in reason)
    assert replay_rec["actor"] == "unverified:airflow/test"
    assert replay_rec["after"]["body"] == {"sha256": sha(body), "bytes": len(body)}
    large_rec = next(r for reason, r in by_reason.items() if reason.startswith("413"))
    assert large_rec["actor"] == "unverified:unknown" and large_rec["target"] == "events/cron"
    assert large_rec["after"]["body"] == {"bytes": len(huge_body)}
    malformed = next(r for reason, r in by_reason.items() if "output_tail" in reason)
    assert malformed["actor"] == "cron/payloadhost"
    (hook_rec,) = records(lines, "trigger.refused")
    assert hook_rec["actor"] == "unverified:webhook/signed"
    assert hook_rec["after"]["body"] == {"sha256": sha(hook_body), "bytes": len(hook_body)}
    (denied,) = records(lines, "access.denied")
    assert denied["after"]["permission"] == "runs:execute"
