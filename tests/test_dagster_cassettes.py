"""The Dagster adapter's GraphQL replayed from cassettes recorded on the real Dagster 1.13.27.

Fast and offline. Record again (the harness starts Dagster) with

    INTERLOCK_RECORD_CASSETTES=1 .venv/bin/python -m pytest tests/test_dagster_cassettes.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock_dagster import DagsterAdapter
from recording import RECORDING, cassettes_of, until_finished

from interlock.adapters.contract import JobSpec
from interlock.errors import Rejected
from interlock.states import NodeState

REPLAY_URL = "http://127.0.0.1:13000"  # any address: requests never leave the process
TRACEPARENT = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"

recorder = cassettes_of("dagster")


@pytest.fixture
def adapter(request: pytest.FixtureRequest, tmp_path: Path, sqlite_store: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterAdapter]:
    # sqlite_store: submit claims its launch in the store (interlock.adapters.launch_once).
    url = request.getfixturevalue("dagster_server").url if RECORDING else REPLAY_URL
    (tmp_path / "systems.yaml").write_text(f"systems:\n  dagster/test: {{url: '{url}'}}\n")
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
    yield DagsterAdapter()


def _job(**params: object) -> JobSpec:
    return JobSpec(run_id="e" * 32, node_id="node", attempt=1, flow="tests/cassettes",
                   params={"system": "dagster/test", **params}, traceparent=TRACEPARENT)


@recorder.use_cassette("job_success.yaml")
def test_a_job_run_succeeds_with_output_metadata(adapter: DagsterAdapter) -> None:
    handle = adapter.submit(_job(job="interlock_ok_job", run_config={
        "ops": {"extract": {"config": {"rows": 4}}}}), key="cassette-ok-1")
    obs = until_finished(adapter, handle, polls=600)
    assert obs.state is NodeState.SUCCEEDED
    assert obs.outputs["score"] == 0.42 and obs.outputs["rows"] == 4
    again = adapter.submit(_job(job="interlock_ok_job", run_config={
        "ops": {"extract": {"config": {"rows": 4}}}}), key="cassette-ok-1")
    assert again.external_id == handle.external_id  # found by its key tag: no second run


@recorder.use_cassette("job_failure.yaml")
def test_a_failed_run_names_the_step_and_the_exception(adapter: DagsterAdapter) -> None:
    handle = adapter.submit(_job(job="interlock_fail_job"), key="cassette-fail-1")
    obs = until_finished(adapter, handle, polls=600)
    assert obs.state is NodeState.FAILED
    assert obs.error is not None and "explode: ValueError: risk model unavailable" in obs.error
    assert "risk model unavailable" in adapter.logs(handle).text


@recorder.use_cassette("unknown_job.yaml")
def test_an_unknown_job_is_rejected_with_its_name(adapter: DagsterAdapter) -> None:
    with pytest.raises(Rejected, match="job 'nope_job' does not exist on dagster/test"):
        adapter.submit(_job(job="nope_job"), key="cassette-unknown-1")
