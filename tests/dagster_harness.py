"""A real Dagster (``dagster dev``) for integration tests (Linux: uses /proc).

``ensure_venv()`` installs Dagster once into a cached virtualenv; ``DagsterServer`` runs
``dagster dev -f tests/dagster/defs.py`` (webserver + daemon + code server) on a free loopback
port, in its own session so that ``stop()`` can end every process it started (and none other).

Facts of Dagster 1.13.27 this harness relies on (checked against the installed schema):

- ``dagster dev -f defs.py`` names the code location ``defs.py`` and the repository
  ``__repository__``; the selector of a job is ``{repositoryLocationName, repositoryName,
  jobName}``.
- ``ExecutionMetadata`` (``launchRun``'s ``executionParams.executionMetadata``) has only
  ``tags``, ``rootRunId`` and ``parentRunId``: a caller cannot choose the run id, and
  ``RunConflict`` (a member of ``LaunchRunResult``) is never answered. Find an earlier launch by
  a tag instead (``runs(tags=...)``).
- ``reportRunlessAssetEvents`` takes no metadata; the webserver's REST endpoint
  ``POST /report_asset_materialization/<key/path>`` does (``report_materialization``). Neither
  checks that the asset key is defined.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness_process
import httpx
from harness_process import (
    free_port,
    stop_session,
    tail,
    track,
    untrack,
    venv_environment,
)

DAGSTER_VERSION = "1.13.27"
PACKAGES = (f"dagster=={DAGSTER_VERSION}", f"dagster-webserver=={DAGSTER_VERSION}",
            f"dagster-graphql=={DAGSTER_VERSION}")
REPO = Path(__file__).resolve().parents[1]
DEFS_FILE = REPO / "tests" / "dagster" / "defs.py"

TEST_JOBS = ("interlock_ok_job", "interlock_fail_job", "interlock_flaky_job",
             "interlock_slow_job", "customers_assets_job", "daily_orders_job")
TEST_ASSETS = ("raw_customers", "customer_scores", "risk/sanctions_hits", "daily_orders")
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


class DagsterHarnessError(RuntimeError):
    """Dagster could not be installed, started or driven; the message carries the log tail."""


def ensure_venv() -> Path:
    """The cached virtualenv with Dagster ``DAGSTER_VERSION``, installed if needed."""
    check = (
        "import sys, dagster, dagster_graphql, dagster_webserver; "
        "versions = {dagster.__version__, dagster_graphql.__version__, "
        "dagster_webserver.__version__}; print(versions); "
        f"sys.exit(versions != {{{DAGSTER_VERSION!r}}})"
    )
    return harness_process.ensure_venv(f"dagster-{DAGSTER_VERSION}", PACKAGES, check,
                                       error=DagsterHarnessError)


class _NotRecoverable(DagsterHarnessError):
    """A start-up problem that waiting will not cure (code that does not load, port taken)."""


class DagsterLaunchError(DagsterHarnessError):
    """A launch/re-execution mutation answered something other than ``LaunchRunSuccess``
    (``typename`` is e.g. ``PipelineNotFoundError``, ``RunConfigValidationInvalid``,
    ``PythonError``); ``result`` is the whole answer."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.typename = result.get("__typename")
        super().__init__(f"{self.typename}: {result.get('message')} {result.get('errors') or ''}")


# The test instance: the default queued run coordinator, but dequeuing every second (default 5 s)
# so that tests do not wait; no telemetry, no "new user experience" pop-up.
DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
nux:
  enabled: false
"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status jobName tags { key value } } }
    ... on RunConflict { message }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message reason } }
    ... on Error { message }
  }
}
"""

REEXECUTE_RUN = """
mutation Reexecute($reexecutionParams: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status jobName parentRunId rootRunId
                                    stepKeysToExecute tags { key value } } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName startTime endTime parentRunId rootRunId
                 stepKeysToExecute runConfigYaml tags { key value } }
    ... on Error { message }
  }
}
"""

METADATA_FRAGMENT = """
fragment Meta on MetadataEntry {
  __typename label
  ... on FloatMetadataEntry { floatValue }
  ... on IntMetadataEntry { intValue }
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
  ... on BoolMetadataEntry { boolValue }
}
"""

RUN_EVENTS = """
query RunEvents($runId: ID!, $afterCursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $afterCursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp level stepKey eventType }
        ... on ExecutionStepFailureEvent {
          error { message className stack cause { message className } }
          errorSource failureMetadata { label description }
        }
        ... on RunFailureEvent { pipelineName error { message className } }
        ... on ExecutionStepOutputEvent {
          outputName
          metadataEntries { ...Meta }
        }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries { ...Meta }
        }
      }
    }
    ... on Error { message }
  }
}
""" + METADATA_FRAGMENT

RUNS_QUERY = """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { count results { runId status jobName startTime endTime parentRunId rootRunId
                                  tags { key value } } }
    ... on Error { message }
  }
}
"""

REPORT_RUNLESS = """
mutation Report($eventParams: ReportRunlessAssetEventsParams!) {
  reportRunlessAssetEvents(eventParams: $eventParams) {
    __typename
    ... on ReportRunlessAssetEventsSuccess { assetKey { path } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

ASSET_MATERIALIZATIONS = """
query Materializations($assetKey: AssetKeyInput!, $limit: Int) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      key { path }
      assetMaterializations(limit: $limit) {
        runId timestamp description stepKey partition tags { key value }
        metadataEntries { ...Meta }
      }
    }
    ... on AssetNotFoundError { message }
  }
}
""" + METADATA_FRAGMENT

HEALTH_QUERY = """
{
  version
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on PythonError { message cause { message } } }
      }
    }
    ... on PythonError { message }
  }
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name } jobs { name } assetNodes { assetKey { path } } }
    }
    ... on Error { message }
  }
  instance {
    daemonHealth { allDaemonStatuses { daemonType required healthy lastHeartbeatTime } }
  }
}
"""


class DagsterServer:
    """One ``dagster dev`` (webserver, daemon and a code server for ``defs_file``)."""

    def __init__(
        self,
        home: Path,
        venv: Path | None = None,
        *,
        port: int | None = None,
        defs_file: Path = DEFS_FILE,
    ) -> None:
        self._home = Path(home).resolve()
        self.venv = Path(venv) if venv else ensure_venv()
        self.port = port or free_port()
        self.defs_file = Path(defs_file).resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at: float | None = None
        self._log_offset = 0  # where this start's part of the log begins
        self._client: httpx.Client | None = None
        self._selector: dict[str, str] | None = None
        # Where the push sensors post: Interlock's API on this port (tests start it).
        self.events_port = free_port()
        self.events_secret = secrets.token_hex(32)
        self.system = "dagster/test"

    # --- properties -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def home(self) -> Path:
        """DAGSTER_HOME: dagster.yaml, the SQLite run/event/schedule storage, the log."""
        return self._home

    @property
    def pid(self) -> int | None:
        """Pid of ``dagster dev`` (also its process-group and session id)."""
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path:
        return self._home / "dagster-dev.log"

    @property
    def location_name(self) -> str:
        """The code location ``dagster dev -f`` names after the file (``defs.py``)."""
        return self.selector()["repositoryLocationName"]

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"DagsterServer(url={self.url!r}, home={str(self._home)!r}, pid={self.pid})"

    # --- lifecycle ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment ``dagster dev`` (and everything it spawns) runs with."""
        keep = venv_environment(self.venv, "DAGSTER")
        keep.update({
            "DAGSTER_HOME": str(self._home),
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "INTERLOCK_EVENTS_URL": f"http://127.0.0.1:{self.events_port}/api/v1/events/dagster",
            "INTERLOCK_EVENTS_SECRET": self.events_secret,
            "INTERLOCK_SYSTEM": self.system,
        })
        return keep

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise DagsterHarnessError(f"{self!r} is already running")
        self._home.mkdir(parents=True, exist_ok=True)
        config = self._home / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== interlock harness: start at {datetime.now(UTC).isoformat()} "
                      f"on port {self.port} =====\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(
                [str(self.venv / "bin" / "dagster"), "dev", "-f", str(self.defs_file),
                 # Working directory (on sys.path): helper modules beside the defs file.
                 "-d", str(self.defs_file.parent),
                 "-h", "127.0.0.1", "-p", str(self.port),
                 "--code-server-log-level", "info"],
                cwd=self._home,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started_at = time.time()
        track(self)

    def stop(self, timeout: float = 30.0, straggler_grace: float = 3.0) -> None:
        """Stop every process of this ``dagster dev``'s session (see ``stop_session``),
        run workers included."""
        proc = self._proc
        if proc is None:
            return
        stop_session(proc, timeout=timeout, straggler_grace=straggler_grace,
                     error=DagsterHarnessError)
        self._proc = None
        if self._client is not None:
            self._client.close()
            self._client = None
        untrack(self)

    def wait_healthy(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until GraphQL answers, the code location is loaded with the test jobs and
        assets, and the daemon's run queue heartbeats since this start. Returns the last
        health document. Raises with the log tail on failure."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise DagsterHarnessError(f"dagster dev exited (code {code}) before it was "
                                          f"healthy; log tail:\n{self.log_tail()}")
            try:
                self._check_log()
                data = self.graphql(HEALTH_QUERY, timeout=10.0)
                last = self._health_problem(data)
            except _NotRecoverable as exc:
                raise DagsterHarnessError(f"Dagster at {self.url} cannot become healthy: {exc}"
                                          f"\nlog tail:\n{self.log_tail()}") from None
            except (httpx.HTTPError, DagsterHarnessError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if last == "":
                return data
            time.sleep(0.5)
        raise DagsterHarnessError(f"Dagster at {self.url} not healthy after {timeout:.0f}s "
                                  f"({last}); log tail:\n{self.log_tail()}")

    def _check_log(self) -> None:
        """Raise if this start's log shows the webserver could not bind its port (dagster dev
        itself keeps running then)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return
        if "error while attempting to bind on address" in text:
            raise _NotRecoverable(f"port {self.port} is already in use")

    def _health_problem(self, data: dict[str, Any]) -> str:
        """'' when healthy, else what is still missing."""
        workspace = data["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            return f"workspace: {workspace}"
        for entry in workspace["locationEntries"]:
            error = entry["locationOrLoadError"] or {}
            if error.get("__typename") == "PythonError":
                cause = (error.get("cause") or {}).get("message") or ""
                raise _NotRecoverable(f"code location {entry['name']} failed to load: "
                                      f"{error['message'].strip()}\ncaused by: {cause.strip()}")
            if entry["loadStatus"] != "LOADED":
                return f"location {entry['name']} {entry['loadStatus']}"
        repos = data["repositoriesOrError"]
        if repos["__typename"] != "RepositoryConnection":
            return f"repositories: {repos}"
        jobs = {job["name"] for node in repos["nodes"] for job in node["jobs"]}
        assets = {"/".join(a["assetKey"]["path"]) for n in repos["nodes"] for a in n["assetNodes"]}
        missing = sorted((set(TEST_JOBS) - jobs) | (set(TEST_ASSETS) - assets))
        if missing:
            return f"not loaded yet: {missing}"
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        queue = next((s for s in statuses if s["daemonType"] == "QUEUED_RUN_COORDINATOR"), None)
        if queue is None or not queue["healthy"]:
            return f"run queue daemon not healthy: {queue}"
        assert self._started_at is not None
        if (queue["lastHeartbeatTime"] or 0) < self._started_at:
            return f"no run queue heartbeat since this start ({queue['lastHeartbeatTime']})"
        return ""

    # --- GraphQL helpers ------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any] | None = None,
                timeout: float = 60.0) -> dict[str, Any]:
        """POST one GraphQL document; returns ``data``. Raises ``DagsterHarnessError`` if the
        answer has ``errors`` (and httpx's errors if Dagster does not answer)."""
        if self._client is None:
            self._client = httpx.Client(timeout=60.0, trust_env=False)
        response = self._client.post(self.graphql_url, timeout=timeout,
                                     json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("errors") or response.status_code != 200:
            raise DagsterHarnessError(
                f"GraphQL -> {response.status_code}: "
                f"{(body or {}).get('errors') if isinstance(body, dict) else response.text[:2000]}"
            )
        return body["data"]

    def selector(self, job_name: str | None = None) -> dict[str, str]:
        """``{repositoryLocationName, repositoryName[, jobName]}`` of the test code location."""
        if self._selector is None:
            repos = self.graphql(
                "{ repositoriesOrError { __typename ... on RepositoryConnection "
                "{ nodes { name location { name } } } } }"
            )["repositoriesOrError"]
            nodes = repos.get("nodes") or []
            if len(nodes) != 1:
                raise DagsterHarnessError(f"expected one repository, got {repos}")
            self._selector = {"repositoryLocationName": nodes[0]["location"]["name"],
                              "repositoryName": nodes[0]["name"]}
        return {**self._selector, **({"jobName": job_name} if job_name else {})}

    def launch_result(
        self,
        job_name: str,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """The raw ``launchRun`` answer (``__typename`` ``LaunchRunSuccess``...).

        ``run_id`` is sent as ``executionMetadata.runId``, which Dagster 1.13.27's schema does
        not define: the request then fails GraphQL validation (``DagsterHarnessError``).
        """
        metadata: dict[str, Any] = {
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        if run_id is not None:
            metadata["runId"] = run_id
        params = {
            "selector": self.selector(job_name),
            "runConfigData": run_config or {},
            "executionMetadata": metadata,
        }
        return self.graphql(LAUNCH_RUN, {"executionParams": params})["launchRun"]

    def launch(
        self,
        job_name: str,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Launch (queue) a run of ``job_name``; returns its (Dagster-chosen) run id. Raises
        ``DagsterLaunchError`` (with ``typename``) unless the answer is ``LaunchRunSuccess``;
        see ``launch_result`` about ``run_id``."""
        result = self.launch_result(job_name, run_config, tags, run_id)
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterLaunchError(result)
        return result["run"]["runId"]

    def reexecute(self, parent_run_id: str, strategy: str = "FROM_FAILURE",
                  extra_tags: dict[str, str] | None = None) -> str:
        """``launchRunReexecution`` of a finished run (``FROM_FAILURE``, ``ALL_STEPS`` or
        ``FROM_ASSET_FAILURE``); returns the new run id."""
        params: dict[str, Any] = {"parentRunId": parent_run_id, "strategy": strategy}
        if extra_tags:
            params["extraTags"] = [{"key": k, "value": v} for k, v in extra_tags.items()]
        result = self.graphql(REEXECUTE_RUN, {"reexecutionParams": params})
        result = result["launchRunReexecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterLaunchError(result)
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        """The ``Run`` (runId, status, jobName, times, parent/root run ids, tags)."""
        run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise DagsterHarnessError(f"run {run_id}: {run}")
        return run

    def runs(
        self,
        *,
        run_ids: list[str] | None = None,
        job_name: str | None = None,
        tags: dict[str, str] | None = None,
        statuses: list[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """``runsOrError(filter: RunsFilter)``, newest first (filters are ANDed; a tag filter
        matches runs that have all the given tags)."""
        filters: dict[str, Any] = {}
        if run_ids is not None:
            filters["runIds"] = run_ids
        if job_name is not None:
            filters["pipelineName"] = job_name
        if tags:
            filters["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            filters["statuses"] = statuses
        answer = self.graphql(RUNS_QUERY, {"filter": filters, "limit": limit})["runsOrError"]
        if answer["__typename"] != "Runs":
            raise DagsterHarnessError(f"runsOrError({filters}): {answer}")
        return answer["results"]

    def run_status(self, run_id: str) -> str:
        """QUEUED, NOT_STARTED, STARTING, STARTED, SUCCESS, FAILURE, CANCELING, CANCELED..."""
        return self.run(run_id)["status"]

    def wait_run(self, run_id: str, timeout: float = 120.0, poll: float = 0.25) -> str:
        """Poll the run until it is SUCCESS, FAILURE or CANCELED; returns that status."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in TERMINAL_STATUSES:
                return status
            time.sleep(poll)
        raise DagsterHarnessError(f"run {run_id} still {status!r} after {timeout:.0f}s; "
                                  f"log tail:\n{self.log_tail()}")

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """Every event of the run's event log (``logsForRun``, paged), oldest first."""
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.graphql(RUN_EVENTS, {"runId": run_id, "afterCursor": cursor,
                                             "limit": 1000})["logsForRun"]
            if page["__typename"] != "EventConnection":
                raise DagsterHarnessError(f"logsForRun({run_id}): {page}")
            events.extend(page["events"])
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def report_runless_materialization(
        self, asset_key: list[str], description: str | None = None,
        partition_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        """``reportRunlessAssetEvents`` (ASSET_MATERIALIZATION): the GraphQL way to say "this
        asset was produced elsewhere". It carries no metadata (see ``report_materialization``)."""
        params: dict[str, Any] = {"eventType": "ASSET_MATERIALIZATION",
                                  "assetKey": {"path": asset_key}}
        if description is not None:
            params["description"] = description
        if partition_keys is not None:
            params["partitionKeys"] = partition_keys
        return self.graphql(REPORT_RUNLESS, {"eventParams": params})["reportRunlessAssetEvents"]

    def report_materialization(
        self, asset_key: list[str], metadata: dict[str, Any] | None = None,
        description: str | None = None, data_version: str | None = None,
        partition: str | None = None,
    ) -> None:
        """``POST /report_asset_materialization/<key/path>`` (the webserver's REST endpoint,
        which, unlike the GraphQL mutation, takes metadata and a data version)."""
        body = {k: v for k, v in {"metadata": metadata, "description": description,
                                  "data_version": data_version, "partition": partition}.items()
                if v is not None}
        if self._client is None:
            self._client = httpx.Client(timeout=60.0, trust_env=False)
        response = self._client.post(f"{self.url}/report_asset_materialization/"
                                     f"{'/'.join(asset_key)}", json=body)
        if response.status_code != 200:
            raise DagsterHarnessError(f"report_asset_materialization -> "
                                      f"{response.status_code}: {response.text}")

    def asset_materializations(self, asset_key: list[str], limit: int = 20
                               ) -> list[dict[str, Any]]:
        """``assetOrError { ... on Asset { assetMaterializations } }``, newest first (runless
        reports have ``runId`` ``""``)."""
        answer = self.graphql(ASSET_MATERIALIZATIONS,
                              {"assetKey": {"path": asset_key}, "limit": limit})["assetOrError"]
        if answer["__typename"] != "Asset":
            raise DagsterHarnessError(f"assetOrError({asset_key}): {answer}")
        return answer["assetMaterializations"]

    def terminate(self, run_id: str) -> dict[str, Any]:
        """``terminateRun`` (SAFE_TERMINATE); returns the answer (``TerminateRunSuccess``...)."""
        return self.graphql(
            """mutation Terminate($runId: String!) {
                 terminateRun(runId: $runId) {
                   __typename
                   ... on TerminateRunSuccess { run { runId status } }
                   ... on TerminateRunFailure { message run { runId status } }
                   ... on Error { message }
                 }
               }""",
            {"runId": run_id},
        )["terminateRun"]
