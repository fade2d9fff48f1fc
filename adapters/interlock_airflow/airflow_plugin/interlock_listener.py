"""Airflow 3 listener plugin: pushes DAG-run and task-instance state changes to Interlock.

Standard library only (it runs inside Airflow's own environment, where Interlock is not
installed). Configured by environment variables:

- ``INTERLOCK_EVENTS_URL``    where to POST events; unset -> the plugin does nothing;
- ``INTERLOCK_EVENTS_SECRET`` HMAC-SHA256 key for the ``X-Interlock-Signature`` header;
- ``INTERLOCK_SYSTEM``        the name of this Airflow in Interlock (``"system"`` of each event).

Delivery never blocks or breaks Airflow: hooks only enqueue; a daemon thread per process
sends (2 s timeout, 3 tries on connection errors / 5xx, then a warning and the event is
dropped; Interlock polls as a fallback). At interpreter exit it waits at most ~3 s for the
queue to drain, so events from short-lived task processes still go out.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

# A verbatim copy of interlock.adapters.signing, beside this file (Airflow puts the plugins
# folder on sys.path; a pip install ships it as a module). tests/test_signing_copies.py.
from _interlock_signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

try:  # the documented import; it pulls in airflow core
    from airflow.plugins_manager import AirflowPlugin
except Exception:  # pragma: no cover - task-sdk-only installs
    from airflow.sdk.plugins_manager import AirflowPlugin  # type: ignore[no-redef]

try:
    from airflow.listeners import hookimpl
except Exception:  # pragma: no cover - same marker, without airflow core
    from pluggy import HookimplMarker

    hookimpl = HookimplMarker("airflow")

log = logging.getLogger("interlock_listener")

HTTP_TIMEOUT = 2.0
TRIES = 3
BACKOFF = (0.2, 0.5)
QUEUE_SIZE = 1000
EXIT_FLUSH_SECONDS = 3.0
_UTC = timezone.utc  # noqa: UP017 - datetime.UTC is 3.11+, Airflow 3 still runs on 3.10


class _Sender:
    """A bounded queue drained by one daemon thread; re-created after a fork."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[bytes] | None = None

    def reset_after_fork(self) -> None:
        # Threads do not survive fork(); the child builds its own queue and thread lazily.
        self._pid = None
        self._lock = threading.Lock()
        self._queue = None

    def _ensure(self) -> queue.Queue[bytes]:
        pid = os.getpid()
        q = self._queue
        if self._pid == pid and q is not None:
            return q
        with self._lock:
            if self._pid != pid or self._queue is None:
                self._queue = queue.Queue(maxsize=QUEUE_SIZE)
                threading.Thread(
                    target=self._run, args=(self._queue,), name="interlock-listener", daemon=True
                ).start()
                # Registered in this process (Airflow's task fork clears handlers made before it).
                atexit.register(self.flush, EXIT_FLUSH_SECONDS)
                self._pid = pid
            return self._queue

    def submit(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        try:
            self._ensure().put_nowait(body)
        except queue.Full:
            log.warning("interlock_listener: queue full, dropping %s event", event.get("kind"))

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait (at most ``timeout`` s) until every queued event was sent or dropped."""
        q = self._queue
        if q is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        while q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not q.unfinished_tasks

    def _run(self, q: queue.Queue[bytes]) -> None:
        while True:
            body = q.get()
            try:
                _deliver(body)
            except Exception:  # never let the sender thread die
                log.warning("interlock_listener: unexpected delivery error", exc_info=True)
            finally:
                q.task_done()


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for loopback
    return urllib.request.build_opener()


def _deliver(body: bytes) -> None:
    url = os.environ.get("INTERLOCK_EVENTS_URL")
    if not url:
        return
    secret = os.environ.get("INTERLOCK_EVENTS_SECRET", "")
    opener = _opener(url)
    last = ""
    for attempt in range(TRIES):
        timestamp = int(time.time())
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(secret, str(timestamp), body),
            },
        )
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:
            exc.close()
            last = f"HTTP {exc.code}"
            if exc.code < 500:
                break  # the receiver refused this event: retrying will not help
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            last = repr(exc)
        if attempt < TRIES - 1:
            time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
    log.warning("interlock_listener: dropping event after %s (%s)", last, url)


_sender = _Sender()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_sender.reset_after_fork)


# --- event building (defensive: scheduler DagRun / ORM TaskInstance / RuntimeTaskInstance) ---


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    try:
        if isinstance(obj, dict):
            return obj.get(name, default)
        value = getattr(obj, name, default)
        return default if value is None else value
    except Exception:  # detached ORM objects, lazy loads outside a session...
        return default


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return value.isoformat()
    except Exception:
        return str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _conf(dag_run: Any) -> dict[str, Any]:
    conf = _get(dag_run, "conf")
    if isinstance(conf, dict):
        return conf
    try:
        return dict(conf) if conf else {}
    except Exception:
        return {}


def _dag_run_of(ti: Any) -> Any:
    # Task runner: the DagRun the API server sent with the task's run context.
    ctx = _get(ti, "_ti_context_from_server")
    dag_run = _get(ctx, "dag_run")
    if dag_run is not None:
        return dag_run
    cached = _get(ti, "_cached_template_context")
    dag_run = _get(cached, "dag_run")
    if dag_run is not None:
        return dag_run
    # Scheduler / API server: the ORM relationship.
    return _get(ti, "dag_run")


def _base(kind: str, state: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "system": os.environ.get("INTERLOCK_SYSTEM", "airflow"),
        "kind": kind,
        "state": state,
    }


def dag_run_event(state: str, dag_run: Any) -> dict[str, Any]:
    event = _base("dag_run", state)
    event.update(
        dag_id=_get(dag_run, "dag_id"),
        run_id=_get(dag_run, "run_id"),
        run_type=_text(_get(dag_run, "run_type")),
        logical_date=_iso(_get(dag_run, "logical_date")),
        start_date=_iso(_get(dag_run, "start_date")),
        end_date=_iso(_get(dag_run, "end_date")),
        conf=_conf(dag_run),
        error=None,
        emitted_at=datetime.now(_UTC).isoformat(),
    )
    return event


def task_instance_event(state: str, ti: Any, error: Any = None) -> dict[str, Any]:
    dag_run = _dag_run_of(ti)
    event = _base("task_instance", state)
    map_index = _get(ti, "map_index", -1)
    try_number = _get(ti, "try_number")
    event.update(
        dag_id=_get(ti, "dag_id") or _get(dag_run, "dag_id"),
        run_id=_get(ti, "run_id") or _get(dag_run, "run_id"),
        task_id=_get(ti, "task_id"),
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=try_number if isinstance(try_number, int) else None,
        run_type=_text(_get(dag_run, "run_type")),
        logical_date=_iso(_get(dag_run, "logical_date") or _get(ti, "logical_date")),
        start_date=_iso(_get(ti, "start_date")),
        end_date=_iso(_get(ti, "end_date")),
        conf=_conf(dag_run),
        error=None if error is None else str(error),
        emitted_at=datetime.now(_UTC).isoformat(),
    )
    return event


def _emit(build, *args: Any) -> None:
    if not os.environ.get("INTERLOCK_EVENTS_URL"):
        return
    try:
        _sender.submit(build(*args))
    except Exception:
        log.warning("interlock_listener: could not build/queue event", exc_info=True)


# --- hook implementations (signatures of Airflow 3.3's listener hookspecs) ---


@hookimpl
def on_dag_run_running(dag_run, msg):
    _emit(dag_run_event, "running", dag_run)


@hookimpl
def on_dag_run_success(dag_run, msg):
    _emit(dag_run_event, "success", dag_run)


@hookimpl
def on_dag_run_failed(dag_run, msg):
    _emit(dag_run_event, "failed", dag_run)


@hookimpl
def on_task_instance_running(previous_state, task_instance):
    _emit(task_instance_event, "running", task_instance)


@hookimpl
def on_task_instance_success(previous_state, task_instance):
    _emit(task_instance_event, "success", task_instance)


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error):
    _emit(task_instance_event, "failed", task_instance, error)


class InterlockListenerPlugin(AirflowPlugin):
    name = "interlock_listener"
    # The module itself holds the @hookimpl functions (works for plugins-folder and
    # entry-point loading alike: both put the module in sys.modules first).
    listeners = [sys.modules[__name__]]
