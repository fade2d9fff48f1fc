"""`uses: airflow`: trigger a DAG in a registered Airflow 3 system and observe its run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from interlock.adapters import (
    Adapter,
    AssetBatch,
    ForeignAction,
    ForeignApproval,
    ForeignEvent,
    Handle,
    JobSpec,
    LogChunk,
    Observation,
    RemoteJob,
    RetryMode,
    load_systems,
    poll_by_system,
    registered,
)
from interlock.adapters.openlineage import parent_run_facet
from interlock_airflow import actions, assets, discover, events, hitl, observe, runs, tasks
from interlock_airflow.client import SESSIONS, AirflowSession
from interlock_airflow.links import failed_task, run_url, with_task
from interlock_airflow.params import AirflowParams, LogScope

KIND = "airflow"


def session(name: str | None) -> AirflowSession:
    return SESSIONS.get(registered(name, kind=KIND))


def openlineage_conf(parent: dict[str, Any]) -> dict[str, str]:
    """`conf["openlineage"]` as Airflow's OpenLineage provider reads it (flat keys), from
    the attempt's parent run facet."""
    root = parent["root"]
    return {
        "parentRunId": parent["run"]["runId"],
        "parentJobNamespace": parent["job"]["namespace"],
        "parentJobName": parent["job"]["name"],
        "rootParentRunId": root["run"]["runId"],
        "rootParentJobNamespace": root["job"]["namespace"],
        "rootParentJobName": root["job"]["name"],
    }


class AirflowAdapter(Adapter):
    kind: ClassVar[str] = KIND
    params_model = AirflowParams
    # Push events make polling a fallback: it backs off to 20 s while nothing changes.
    poll_interval: ClassVar[tuple[float, float]] = (2.0, 20.0)
    retry_modes = frozenset({RetryMode.CLEAR_FAILED})
    import_help: ClassVar[str] = "DAGs, their tasks, schedules and assets -> a mapping file."

    def submit(self, job: JobSpec, *, key: str) -> Handle:
        params = AirflowParams.model_validate(job.params)
        s = session(params.system)
        if job.retry_mode is RetryMode.CLEAR_FAILED and job.previous is not None:
            return self._clear_failed(s, params, job.previous)
        if params.unpause:
            runs.unpause(s, params.dag_id)
        run = runs.trigger(s, params.dag_id, key, self._conf(job, params, key))
        return self._handle(s, params, run.dag_run_id, run.run_after.isoformat())

    def _conf(self, job: JobSpec, params: AirflowParams, key: str) -> dict[str, Any]:
        return {**params.conf,
                "interlock": {"run_id": job.run_id, "node_id": job.node_id,
                              "attempt": job.attempt, "traceparent": job.traceparent},
                "openlineage": openlineage_conf(parent_run_facet(job, key=key))}

    def _handle(self, s: AirflowSession, params: AirflowParams, run_id: str,
                run_after: str) -> Handle:
        return Handle(kind=KIND, external_id=run_id, system=s.system.name,
                      url=run_url(s.system.ui, params.dag_id, run_id),
                      data={"dag_id": params.dag_id, "run_after": run_after,
                            "outputs_from": params.outputs_from, "logs": params.logs.value})

    def _clear_failed(self, s: AirflowSession, params: AirflowParams, previous: Handle) -> Handle:
        """Re-run only the failed tasks of the same DAG run; idempotent: a run that is no
        longer failed (a twin cleared it already) is adopted as it is."""
        run = runs.get(s, params.dag_id, previous.external_id)
        if run.state.value == "failed":
            runs.clear_failed(s, params.dag_id, previous.external_id)
        return self._handle(s, params, run.dag_run_id, run.run_after.isoformat())

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return poll_by_system(handles, lambda name, group: observe.observe(session(name), group))

    def cancel(self, handle: Handle) -> None:
        s = session(handle.system)
        runs.mark_failed(s, handle.data["dag_id"], handle.external_id)

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        s = session(handle.system)
        instances = tasks.of_runs(s, [handle.data["dag_id"]], [handle.external_id])
        if handle.data.get("logs") != LogScope.ALL.value:
            instances = tasks.failed(instances) or instances
        parts = [f"===== task {ti.task_id} (try {ti.try_number}, "
                 f"{ti.state.value if ti.state else 'none'}) =====\n{tasks.log_text(s, ti)}"
                 for ti in instances]
        return LogChunk(text="\n".join(parts))

    def discover(self) -> list[RemoteJob]:
        found: list[RemoteJob] = []
        for system in load_systems().of_kind(KIND):
            found += discover.dags(SESSIONS.get(system))
        return found

    def run_link(self, ui: str, job_id: str, external_id: str, *,
                 task_id: str | None = None) -> str | None:
        return run_url(ui, job_id, external_id, task_id)

    def attempt_link(self, handle: Handle, *, ui: str | None, error: str | None) -> str | None:
        """The DAG run's page, at the first failed task when the attempt failed."""
        dag_id = handle.data.get("dag_id")
        if not dag_id:
            return handle.url
        url = handle.url or (run_url(ui, dag_id, handle.external_id) if ui else None)
        return with_task(url, failed_task(error)) if url else None

    def parse_event(self, payload: dict[str, Any]) -> ForeignEvent:
        return events.parse(payload)

    def asset_events(self, system: str, keys: Sequence[str],
                     position: str | None) -> AssetBatch:
        return assets.read(session(system), keys, position)

    def report_materialization(self, system: str, asset_key: str, *,
                               metadata: dict[str, Any]) -> list[str]:
        """An asset event in Airflow: the DAGs scheduled on the asset start."""
        return assets.report(session(system), asset_key, metadata)

    def recent_runs(self, system: str, since: datetime) -> list[ForeignEvent]:
        s = session(system)
        return [events.of_run(system, run) for run in runs.finished_since(s, since)]

    def foreign_actions(self, system: str, *, after_id: int | None,
                        after_time: datetime | None, limit: int) -> list[ForeignAction]:
        return actions.since(session(system), after_id=after_id, after_time=after_time,
                             limit=limit)

    def foreign_approvals(self, system: str) -> list[ForeignApproval]:
        return hitl.pending(session(system))

    def foreign_approval(self, system: str, ref: str) -> ForeignApproval | None:
        return hitl.get(session(system), ref)

    def answer_approval(self, system: str, ref: str, *, chosen: Sequence[str],
                        params_input: dict[str, Any]) -> ForeignApproval:
        return hitl.answer(session(system), ref, chosen=chosen, params_input=params_input)
