"""`uses: dagster`: launch a Dagster job or materialize assets, and observe the run.

Idempotency: Dagster 1.13 does not let the caller choose a run id (`ExecutionMetadata`
has no `runId`; nothing answers `RunConflict`), so every launch carries the attempt's key
as the tag `interlock/key`, and a submit first looks the key up: a run that exists is
adopted. A redelivered submit after an unclear answer finds the run it made. (Two submits
of one key racing within the same second could both launch; the executor's compare-and-set
on the attempt makes that a redelivery during a submit, not a normal path.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from interlock.adapters import (
    Adapter,
    AssetBatch,
    ForeignEvent,
    Handle,
    JobSpec,
    LogChunk,
    Observation,
    Rejected,
    RemoteJob,
    RetryMode,
    launch_once,
    load_systems,
    poll_by_system,
    registered,
)
from interlock.adapters.links import segment
from interlock_dagster import assets, events, locations, observe, queries
from interlock_dagster.client import SESSIONS, GraphQLSession
from interlock_dagster.observe import KEY_TAG
from interlock_dagster.params import DagsterParams

KIND = "dagster"


def session(name: str | None) -> GraphQLSession:
    return SESSIONS.get(registered(name, kind=KIND))


def run_url(ui: str, run_id: str) -> str:
    return f"{ui.rstrip('/')}/runs/{segment(run_id)}"


class DagsterAdapter(Adapter):
    kind: ClassVar[str] = KIND
    params_model = DagsterParams
    poll_interval: ClassVar[tuple[float, float]] = (1.0, 20.0)
    retry_modes = frozenset({RetryMode.FROM_FAILURE})
    import_help: ClassVar[str] = "Jobs, assets and their dependencies -> a mapping file."

    def submit(self, job: JobSpec, *, key: str) -> Handle:
        params = DagsterParams.model_validate(job.params)
        s = session(params.system)
        # One caller at a time looks the key up and launches (two deliveries of the attempt
        # would otherwise both find nothing and both launch); later ones get its run id.
        return self._handle(s, launch_once(key, lambda: self._launch(s, job, params, key)))

    def _launch(self, s: GraphQLSession, job: JobSpec, params: DagsterParams, key: str) -> str:
        existing = observe.run_with_key(s, key)
        if existing is not None:  # this key launched already (e.g. before a crash): adopt it
            return str(existing["runId"])
        tags = self._tags(job, params, key)
        if job.retry_mode is RetryMode.FROM_FAILURE and job.previous is not None:
            return self._reexecute(s, job.previous.external_id, tags)
        execution = {"selector": locations.selector(s, params),
                     "runConfigData": params.run_config,
                     "executionMetadata": {"tags": [{"key": k, "value": v}
                                                    for k, v in tags.items()]}}
        answer = s.query(queries.LAUNCH_RUN, {"executionParams": execution})["launchRun"]
        return _launched(s, answer, params)

    def _tags(self, job: JobSpec, params: DagsterParams, key: str) -> dict[str, str]:
        return {**params.tags, KEY_TAG: key, "interlock/run_id": job.run_id,
                "interlock/node_id": job.node_id, "interlock/traceparent": job.traceparent}

    def _reexecute(self, s: GraphQLSession, parent: str, tags: dict[str, str]) -> str:
        params = {"parentRunId": parent, "strategy": "FROM_FAILURE",
                  "extraTags": [{"key": k, "value": v} for k, v in tags.items()]}
        answer = s.query(queries.REEXECUTE, {"reexecutionParams": params})["launchRunReexecution"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise Rejected(f"{s.system.name} refused to re-execute run {parent} from failure: "
                           f"{answer.get('message')}")
        return str(answer["run"]["runId"])

    def _handle(self, s: GraphQLSession, run_id: str) -> Handle:
        return Handle(kind=KIND, external_id=run_id, system=s.system.name,
                      url=run_url(s.system.ui, run_id))

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return poll_by_system(handles, lambda name, group: observe.observe(session(name), group))

    def cancel(self, handle: Handle) -> None:
        s = session(handle.system)
        answer = s.query(queries.TERMINATE, {"runId": handle.external_id})["terminateRun"]
        if answer["__typename"] not in ("TerminateRunSuccess", "TerminateRunFailure"):
            raise Rejected(f"{s.system.name}: cannot terminate {handle.external_id}: "
                           f"{answer.get('message')}")

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        s = session(handle.system)
        return LogChunk(text=observe.log_text(observe.events(s, handle.external_id)))

    def asset_events(self, system: str, keys: Sequence[str],
                     position: str | None) -> AssetBatch:
        return assets.read(session(system), keys, position)

    def report_materialization(self, system: str, asset_key: str, *,
                               metadata: dict[str, Any]) -> list[str]:
        """A runless materialization, through the webserver's REST route: unlike the
        GraphQL `reportRunlessAssetEvents`, it keeps metadata (run, node, trace). Dagster's
        own readers (sensors, downstream assets) are in its asset graph, not named here."""
        s = session(system)
        s.post_rest(f"/report_asset_materialization/{asset_key}",
                    {"metadata": metadata, "description": "reported by Interlock"})
        return []

    def run_link(self, ui: str, job_id: str, external_id: str, *,
                 task_id: str | None = None) -> str | None:
        return run_url(ui, external_id)

    def attempt_link(self, handle: Handle, *, ui: str | None, error: str | None) -> str | None:
        return handle.url or (run_url(ui, handle.external_id) if ui else None)

    def parse_event(self, payload: dict[str, Any]) -> ForeignEvent:
        return events.parse(payload)

    def recent_runs(self, system: str, since: datetime) -> list[ForeignEvent]:
        s = session(system)
        finished = observe.runs(s, {"statuses": ["SUCCESS", "FAILURE", "CANCELED"],
                                    "updatedAfter": since.timestamp()})
        return [events.of_run(system, run) for run in finished]

    def discover(self) -> list[RemoteJob]:
        found: list[RemoteJob] = []
        for system in load_systems().of_kind(KIND):
            found += _remote_jobs(SESSIONS.get(system))
        return found


def _launched(s: GraphQLSession, answer: dict[str, Any], params: DagsterParams) -> str:
    kind = answer["__typename"]
    if kind == "LaunchRunSuccess":
        return str(answer["run"]["runId"])
    what = f"job {params.job!r}" if params.job else f"assets {params.assets}"
    if kind == "RunConfigValidationInvalid":
        errors = "; ".join(e["message"] for e in answer["errors"])
        raise Rejected(f"{s.system.name} refused the run_config of {what}: {errors}")
    raise Rejected(f"{s.system.name} refused to launch {what}: {kind}: {answer.get('message')}")


def _remote_jobs(s: GraphQLSession) -> list[RemoteJob]:
    found = []
    for repo in locations.repositories(s):
        where = {"location": repo["location"]["name"], "repository": repo["name"]}
        for job in repo["jobs"]:
            if job["name"].startswith("__"):
                continue  # Dagster's implicit asset job
            found.append(RemoteJob(system=s.system.name, job_id=job["name"],
                                   description=job.get("description") or "",
                                   extra={**where, "type": "job", "node": {
                                       "uses": KIND, "with": {"system": s.system.name,
                                                              "job": job["name"]}}}))
        for asset in repo["assetNodes"]:
            key = "/".join(asset["assetKey"]["path"])
            found.append(RemoteJob(system=s.system.name, job_id=f"asset:{key}",
                                   description=asset.get("description") or "",
                                   extra={**where, "type": "asset", "group": asset["groupName"],
                                          "depends_on": ["/".join(d["path"]) for d in
                                                         asset["dependencyKeys"]],
                                          "jobs": asset["jobNames"], "node": {
                                              "uses": KIND, "with": {"system": s.system.name,
                                                                     "assets": [key]}}}))
    return found
