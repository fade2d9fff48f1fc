"""A real Apache Airflow (``airflow standalone``) for integration tests (Linux: uses /proc).

``ensure_venv()`` installs Airflow once into a cached virtualenv; ``AirflowServer`` runs
``airflow standalone`` on a free loopback port with the test DAGs (``tests/airflow/dags``) and
the Interlock listener plugin (``adapters/interlock_airflow/airflow_plugin``), in its own session
so that ``stop()`` can end every process it started (and none other).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import harness_process
import httpx
import jwt
from harness_process import (
    free_port,
    stop_session,
    tail,
    track,
    untrack,
    venv_environment,
)

from interlock.access import tokens

AIRFLOW_VERSION = "3.3.2"
# Airflow's OpenLineage provider, pointed at Interlock's `POST /api/v1/lineage`.
OPENLINEAGE_PROVIDER = "apache-airflow-providers-openlineage==2.20.3"
LINEAGE_PATH = "api/v1/lineage"
REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "tests" / "airflow" / "dags"
PLUGINS_FOLDER = REPO / "adapters" / "interlock_airflow" / "airflow_plugin"

UNPAUSED_DAGS = ("interlock_ok", "interlock_fail", "interlock_flaky", "interlock_slow",
                 "interlock_secret", "interlock_approval")
TEST_DAGS = (*UNPAUSED_DAGS, "interlock_daily")  # interlock_daily (@daily) stays paused
TEST_TAG = "interlock-test"
TERMINAL_STATES = frozenset({"success", "failed"})
EVENTS_PATH = "/api/v1/events/airflow"


class AirflowHarnessError(RuntimeError):
    """Airflow could not be installed, started or driven; the message carries the log tail."""


def ensure_venv() -> Path:
    """The cached virtualenv with ``apache-airflow==AIRFLOW_VERSION``, installed if needed."""
    check = ("import airflow, sys; import airflow.providers.openlineage; "
             "print(airflow.__version__); "
             f"sys.exit(airflow.__version__ != {AIRFLOW_VERSION!r})")
    return harness_process.ensure_venv(f"airflow-{AIRFLOW_VERSION}-openlineage",
                                       [f"apache-airflow=={AIRFLOW_VERSION}",
                                        OPENLINEAGE_PROVIDER], check,
                                       error=AirflowHarnessError)


class AirflowServer:
    """One ``airflow standalone`` (API server, scheduler, DAG processor, triggerer)."""

    def __init__(
        self,
        home: Path,
        venv: Path | None = None,
        *,
        port: int | None = None,
        events_port: int | None = None,
        events_secret: str | None = None,
        system: str = "airflow/test",
        users: dict[str, str] | None = None,
        dags_folder: Path = DAGS_FOLDER,
        plugins_folder: Path = PLUGINS_FOLDER,
    ) -> None:
        self._home = Path(home)
        self.venv = Path(venv) if venv else ensure_venv()
        self.port = port or free_port()
        self.events_port = events_port or free_port()
        # The scheduler and triggerer serve task logs on fixed ports (8793/8794) by default:
        # give each server its own so that two test sessions can run side by side.
        self.log_server_ports = (free_port(), free_port())
        self.events_secret = events_secret or secrets.token_hex(32)
        # The OpenLineage provider's API key: an Interlock token of the `producer` role, made
        # here and registered in a test's store by `push_api(..., producer_token=...)`.
        self.lineage_token = tokens.mint()
        self.system = system
        self.dags_folder = Path(dags_folder)
        self.plugins_folder = Path(plugins_folder)
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at: datetime | None = None
        self._client: httpx.Client | None = None
        # With users, auth is on: {name: password}, all admins; without, everyone is admin.
        self.users = dict(users or {})
        # Signs the API's tokens; change it before a restart to make old tokens invalid.
        self.jwt_secret = secrets.token_hex(32)  # 64 bytes: what HS512 asks of a key

    # --- properties -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def home(self) -> Path:
        return self._home

    @property
    def pid(self) -> int | None:
        """Pid of ``airflow standalone`` (also its process-group and session id)."""
        return self._proc.pid if self._proc else None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.events_port}{EVENTS_PATH}"

    @property
    def passwords_file(self) -> Path:
        return self._home / "passwords.json"

    @property
    def log_path(self) -> Path:
        return self._home / "standalone.log"

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"AirflowServer(url={self.url!r}, home={str(self._home)!r}, pid={self.pid})"

    # --- lifecycle ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment ``airflow standalone`` (and everything it spawns) runs with."""
        keep = venv_environment(self.venv, "AIRFLOW")
        keep.update({
            "AIRFLOW_HOME": str(self._home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False" if self.users else "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:admin" for name in self.users),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            # Task runners must reach the execution API on our port, not the default :8080.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            # Find new DAG files within seconds (default: 300 s directory listing).
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "NO_COLOR": "1",
            # The OpenLineage provider posts to Interlock's lineage endpoint, on the port the
            # listener plugin posts events to (nothing listens there unless a test serves
            # the API: the provider then logs and drops its events, never failing a task).
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({
                "type": "http", "url": f"http://127.0.0.1:{self.events_port}",
                "endpoint": LINEAGE_PATH, "timeout": 2,
                "auth": {"type": "api_key", "apiKey": self.lineage_token}}),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": self.system,  # its jobs meet Interlock's
            # The listener plugin's settings.
            "INTERLOCK_EVENTS_URL": self.events_url,
            "INTERLOCK_EVENTS_SECRET": self.events_secret,
            "INTERLOCK_SYSTEM": self.system,
        })
        return keep

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise AirflowHarnessError(f"{self!r} is already running")
        self._home.mkdir(parents=True, exist_ok=True)
        self.passwords_file.write_text(json.dumps(self.users))
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== interlock harness: start at {datetime.now(UTC).isoformat()} "
                      f"on port {self.port} =====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [str(self.venv / "bin" / "airflow"), "standalone"],
                cwd=self._home,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started_at = datetime.now(UTC)
        track(self)

    def stop(self, timeout: float = 30.0, straggler_grace: float = 3.0) -> None:
        """Stop every process of this standalone's session (see ``stop_session``): a
        running task lives in its own process group and, once its supervisor is gone,
        ignores SIGTERM, like a worker host dying mid-task."""
        proc = self._proc
        if proc is None:
            return
        stop_session(proc, timeout=timeout, straggler_grace=straggler_grace,
                     error=AirflowHarnessError)
        self._proc = None
        if self._client is not None:
            self._client.close()
            self._client = None
        untrack(self)

    def wait_healthy(self, timeout: float = 240.0) -> dict[str, Any]:
        """Wait until the API answers, a scheduler of *this* start heartbeats and the test DAGs
        are parsed. Returns the last health document. Raises with the log tail on failure."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise AirflowHarnessError(f"airflow standalone exited (code {code}) before it was "
                                          f"healthy; log tail:\n{self.log_tail()}")
            try:
                last = self._health_problem()
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if last == "":
                return self.get_json("/api/v2/monitor/health")
            time.sleep(1.0)
        raise AirflowHarnessError(f"Airflow at {self.url} not healthy after {timeout:.0f}s "
                                  f"({last}); log tail:\n{self.log_tail()}")

    def _health_problem(self) -> str:
        """'' when healthy, else what is still missing."""
        response = self.api("GET", "/api/v2/monitor/health")
        if response.status_code != 200:
            return f"health -> {response.status_code}"
        health = response.json()
        for part in ("metadatabase", "scheduler", "dag_processor"):
            if (health.get(part) or {}).get("status") != "healthy":
                return f"{part} not healthy: {health.get(part)}"
        beat = health["scheduler"].get("latest_scheduler_heartbeat")
        if not beat or datetime.fromisoformat(beat) < self._started_at:
            return f"no scheduler heartbeat since this start (last {beat})"
        errors = self.get_json("/api/v2/importErrors")
        if errors.get("total_entries"):
            raise AirflowHarnessError(f"DAG import errors: {errors}")
        dags = self.get_json("/api/v2/dags", params={"tags": TEST_TAG, "limit": 100})
        missing = set(TEST_DAGS) - {d["dag_id"] for d in dags["dags"]}
        if missing:
            return f"DAGs not parsed yet: {sorted(missing)}"
        return ""

    # --- REST helpers ---------------------------------------------------------------------

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """One request to the REST API (no auth needed: all users are admins)."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False,
                                        headers=self._auth_headers())
        if json is not None:
            kwargs["json"] = json
        return self._client.request(method, path, **kwargs)

    def token_for(self, username: str, role: str = "ADMIN") -> str:
        """A bearer token of Airflow user ``username``, to act as a second person (e.g. one
        answering a human-in-the-loop request in Airflow's UI). With auth on, the user logs
        in; with everyone admin, logins all yield "Anonymous", so the token is signed the way
        Airflow signs its own (HS512 with ``[api_auth] jwt_secret``, audience
        ``apache-airflow``): the API takes a bearer token over its all-admins default."""
        if self.users:
            response = httpx.post(f"{self.url}/auth/token", timeout=30.0, trust_env=False,
                                  json={"username": username, "password": self.users[username]})
            response.raise_for_status()
            return str(response.json()["access_token"])
        now = int(time.time())
        claims = {"sub": username, "role": role, "teams": None, "aud": "apache-airflow",
                  "jti": secrets.token_hex(16), "iat": now, "nbf": now, "exp": now + 3600}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS512")

    def _auth_headers(self) -> dict[str, str]:
        if not self.users:
            return {}
        name, password = next(iter(self.users.items()))
        response = httpx.post(f"{self.url}/auth/token", timeout=30.0, trust_env=False,
                              json={"username": name, "password": password})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """``api()`` that raises on an error status and returns the decoded JSON."""
        response = self.api(method, path, json, **kwargs)
        if response.status_code >= 400:
            raise AirflowHarnessError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str | None = None,
                conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a manual DAG run; returns the DAG run document (``dag_run_id``, ``state``...)."""
        body = {
            "dag_run_id": run_id or f"it__{secrets.token_hex(6)}",
            "logical_date": None,  # required key in Airflow 3
            "conf": conf or {},
        }
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_dag_run(self, dag_id: str, run_id: str, timeout: float = 120.0,
                     poll: float = 0.25) -> str:
        """Poll the run until it is ``success`` or ``failed``; returns that state."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_STATES:
                return state
            time.sleep(poll)
        raise AirflowHarnessError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f}s; "
                                  f"log tail:\n{self.log_tail()}")


# --- a stand-in for Interlock's event endpoint ------------------------------------------------


def signature_ok(secret: str, timestamp: str | None, signature: str | None, body: bytes) -> bool:
    """Check ``X-Interlock-Signature`` the way Interlock must (constant-time compare)."""
    if not timestamp or not signature:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class EventReceiver:
    """Records the listener plugin's POSTs on ``127.0.0.1:<port>`` (answers 202)."""

    def __init__(self, port: int, path: str = EVENTS_PATH) -> None:
        self.port = port
        self.path = path
        self.posts: list[dict[str, Any]] = []  # {"path", "headers", "body", "event", "at"}
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)
                except ValueError:
                    event = None
                with receiver._cond:
                    receiver.posts.append({
                        "path": self.path, "headers": dict(self.headers.items()),
                        "body": body, "event": event, "at": time.time(),
                    })
                    receiver._cond.notify_all()
                self.send_response(202 if self.path == receiver.path else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"event-receiver-{port}", daemon=True)

    def __enter__(self) -> EventReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """Decoded events whose fields equal ``match``."""
        with self._cond:
            return [p["event"] for p in self.posts
                    if isinstance(p["event"], dict)
                    and all(p["event"].get(k) == v for k, v in match.items())]

    def wait_for(self, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """The first event matching ``match``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.events(**match)
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(e.get("kind"), e.get("dag_id"), e.get("task_id"), e.get("state"))
                            for e in self.events()]
                    raise AssertionError(f"no event matching {match} within {timeout}s; "
                                         f"got {seen}")
                self._cond.wait(remaining)
