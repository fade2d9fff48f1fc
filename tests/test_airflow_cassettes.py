"""The Airflow adapter's calls replayed from cassettes recorded on the real Airflow 3.3.2.

Fast and offline: no Airflow runs here. The cassettes under `tests/cassettes/airflow/`
were recorded from the harness's `airflow standalone`; record them again with

    INTERLOCK_RECORD_CASSETTES=1 .venv/bin/python -m pytest tests/test_airflow_cassettes.py

(the harness starts Airflow, every request and response is written anew; the
Authorization header is filtered out).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock_airflow import AirflowAdapter
from recording import RECORDING, cassettes_of, until_finished

from interlock.adapters.contract import Handle, JobSpec
from interlock.errors import Rejected, Transient
from interlock.states import NodeState

REPLAY_URL = "http://127.0.0.1:18080"  # any address: requests never leave the process
TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"

recorder = cassettes_of("airflow")


@pytest.fixture
def adapter(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowAdapter]:
    url = request.getfixturevalue("airflow_server").url if RECORDING else REPLAY_URL
    systems = tmp_path / "systems.yaml"
    systems.write_text(f"systems:\n  airflow/test:\n    url: {url}\n")
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    yield AirflowAdapter()


def _job(dag_id: str, **params: object) -> JobSpec:
    return JobSpec(run_id="c" * 32, node_id="node", attempt=1, flow="tests/cassettes",
                   params={"system": "airflow/test", "dag_id": dag_id, **params},
                   traceparent=TRACEPARENT)


@recorder.use_cassette("success_with_outputs.yaml")
def test_success_reads_outputs_from_xcom(adapter: AirflowAdapter) -> None:
    handle = adapter.submit(_job("interlock_ok", conf={"day": "2026-11-24"},
                                 outputs_from=["extract", "screen"]), key="cassette-ok-1")
    assert handle.url == f"{adapter_url(handle)}/dags/interlock_ok/runs/cassette-ok-1"
    obs = until_finished(adapter, handle, polls=400)
    assert obs.state is NodeState.SUCCEEDED and obs.remote_status == "success"
    assert obs.outputs["hits"] == 2 and obs.outputs["extract"] == {"rows": 3, "day": "2026-11-24"}


def adapter_url(handle: Handle) -> str:
    return handle.url.split("/dags/")[0] if handle.url else ""


@recorder.use_cassette("failure_names_task.yaml")
def test_failure_names_the_task_and_keeps_its_log(adapter: AirflowAdapter) -> None:
    handle = adapter.submit(_job("interlock_fail"), key="cassette-fail-1")
    obs = until_finished(adapter, handle, polls=400)
    assert obs.state is NodeState.FAILED
    assert obs.error is not None and "failed task(s): explode" in obs.error
    assert obs.log_excerpt is not None and "sanctions list unreachable" in obs.log_excerpt
    chunk = adapter.logs(handle)
    assert "===== task explode" in chunk.text and "checking sanctions list" in chunk.text


@recorder.use_cassette("duplicate_submit.yaml")
def test_a_second_submit_of_the_key_adopts_the_run(adapter: AirflowAdapter) -> None:
    first = adapter.submit(_job("interlock_ok"), key="cassette-dup-1")
    second = adapter.submit(_job("interlock_ok"), key="cassette-dup-1")  # Airflow says 409
    assert first == second


@recorder.use_cassette("unknown_dag.yaml")
def test_an_unknown_dag_is_rejected_with_its_name(adapter: AirflowAdapter) -> None:
    with pytest.raises(Rejected, match=r"DAG 'no_such_dag' does not exist on airflow/test"):
        adapter.submit(_job("no_such_dag"), key="cassette-unknown-1")


def test_a_refused_connection_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    import socket
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    systems = tmp_path / "systems.yaml"
    systems.write_text(f"systems:\n  airflow/test:\n    url: http://127.0.0.1:{port}\n")
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    with pytest.raises(Transient, match="unreachable"):
        AirflowAdapter().submit(_job("interlock_ok"), key="refused-1")
    handle = Handle(kind="airflow", external_id="x", system="airflow/test",
                    data={"dag_id": "interlock_ok", "run_after": "2026-11-24T00:00:00+00:00"})
    assert AirflowAdapter().poll([handle]) == []  # that system is skipped this tick
