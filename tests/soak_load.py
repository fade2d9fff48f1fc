"""The chaos soak's work (`bench/soak.py`): its flows, an API client that fails over between
the API processes, and the load: runs started through `POST /runs` with an `Idempotency-Key`,
webhooks with and without one, cron reports through the real `interlock cron exec`.

Every script node of every flow appends `<run id> <node id> <attempt>` to one ledger file, so
an execution done twice or never is countable afterwards (`tests/soak_check.py`)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import httpx

NAMESPACE = "soak"
CRON_SYSTEM = "cron/soak"
CRON_JOB = "beat"
CRON_SECRET = "soak-cron-secret-0123456789"
CRON_SECRET_ENV = "SOAK_CRON_EVENTS_SECRET"  # the systems file names it; the API reads it
HOOK_KEY = "soak-hook"
RETRY_FOR_S = 180.0  # a keyed request is retried this long (every fault heals well before)
# What a user gives a job that writes files: a full attempts disk fails an attempt whose
# command ran but whose own files (its outputs, the runner's records) could not be written;
# the next attempt runs once there is room. Each attempt writes its own ledger line.
RETRY = "retry: {attempts: 3, backoff: 2s}"


def ledger_command(ledger: Path, sleep_s: float = 0.0) -> str:
    line = f'echo "$INTERLOCK_RUN_ID $INTERLOCK_NODE_ID $INTERLOCK_ATTEMPT" >> {ledger}'
    return f"'{line}; sleep {sleep_s}'" if sleep_s else f"'{line}'"


def flows(ledger: Path) -> dict[str, str]:
    """id -> source. Script nodes write the ledger; the sleeps make faults land mid-node."""
    def script(sleep_s: float = 0.0, needs: str = "") -> str:
        after = f"needs: [{needs}], " if needs else ""
        return ("{uses: script, " + after + RETRY + ", with: {command: "
                + ledger_command(ledger, sleep_s) + "}}")

    head = f"namespace: {NAMESPACE}\n"
    return {
        # fan-out / fan-in: three script nodes and a noop
        "mix": head + dedent(f"""
            id: mix
            nodes:
              start: {script(1.0)}
              left: {script(0.5, "start")}
              right: {{uses: noop, needs: [start]}}
              join: {script(0.0, "left, right")}
            """),
        # a noop chain; each success fires `downstream` through `after:`
        "chain": head + dedent("""
            id: chain
            nodes:
              a: {uses: noop, with: {v: 1}}
              b: {uses: noop, needs: [a], with: {v: "{{ nodes.a.outputs.v + 1 }}"}}
              c: {uses: noop, needs: [b], with: {v: "{{ nodes.b.outputs.v + 1 }}"}}
              d: {uses: noop, needs: [c], with: {v: "{{ nodes.c.outputs.v + 1 }}"}}
            """),
        "downstream": head + dedent(f"""
            id: downstream
            triggers:
              - after: {{flow: chain, state: success}}
            nodes:
              work: {script(0.3)}
            """),
        "hook": head + dedent(f"""
            id: hook
            inputs: {{order: {{type: string, required: true}}}}
            triggers:
              - webhook: {{key: {HOOK_KEY}}}
            nodes:
              work: {script(0.3)}
            """),
        "ticker": head + dedent(f"""
            id: ticker
            triggers:
              - schedule: {{cron: "* * * * *", timezone: UTC, catchup: all}}
            nodes:
              work: {script()}
            """),
        "after-cron": head + dedent(f"""
            id: after-cron
            triggers:
              - after: {{system: {CRON_SYSTEM}, job: {CRON_JOB}, state: success}}
            nodes:
              work: {script()}
            """),
        "probe": head + dedent(f"""
            id: probe
            inputs: {{fault: {{type: string, required: true}}}}
            nodes:
              work: {script()}
            """),
    }


def cron_files(home: Path) -> dict[str, str]:
    """The systems file and cron mapping the soak's processes point at."""
    systems = home / "systems.yaml"
    systems.write_text(f"systems:\n  {CRON_SYSTEM}:\n"
                       f"    events_secret: {{env: {CRON_SECRET_ENV}}}\n", encoding="utf-8")
    mappings = home / "mappings"
    mappings.mkdir(exist_ok=True)
    (mappings / "cron-soak.yaml").write_text(dedent(f"""
        system: {CRON_SYSTEM}
        source: soak
        jobs:
          {CRON_JOB}:
            schedule: "* * * * *"
            command: "true"
            monitor: false
        """).lstrip(), encoding="utf-8")
    return {"INTERLOCK_SYSTEMS": str(systems), "INTERLOCK_MAPPINGS": str(mappings),
            CRON_SECRET_ENV: CRON_SECRET}


class Client:
    """Calls whichever API process answers, as a load balancer would."""

    def __init__(self, urls: list[str], token: str, rng: random.Random):
        self.urls, self.rng = urls, rng
        self.headers = {"Authorization": f"Bearer {token}"}
        self.lock = threading.Lock()

    def _url(self) -> str:
        with self.lock:
            return self.rng.choice(self.urls)

    def once(self, method: str, path: str, **kw: object) -> httpx.Response | None:
        headers = {**self.headers, **kw.pop("headers", {})}  # type: ignore[dict-item]
        try:
            return httpx.request(method, self._url() + path, headers=headers, timeout=10,
                                 **kw)  # type: ignore[arg-type]
        except httpx.HTTPError:
            return None

    def until_ok(self, method: str, path: str, *, within: float = RETRY_FOR_S,
                 **kw: object) -> httpx.Response:
        """Retried (another API, the same body and key) until a 2xx, or raise."""
        deadline = time.monotonic() + within
        last: object = None
        while time.monotonic() < deadline:
            answer = self.once(method, path, **kw)
            if answer is not None and answer.is_success:
                return answer
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
            last = answer.status_code if answer is not None else "no answer"
            time.sleep(0.5)
        raise RuntimeError(f"{method} {path} still failing after {within:.0f} s ({last})")

    def run_state(self, run_id: str) -> str | None:
        answer = self.once("GET", f"/api/v1/runs/{run_id}")
        return answer.json()["state"] if answer is not None and answer.is_success else None


@dataclass
class Sent:
    """What the load asked for, to be compared with what the store holds."""

    started: dict[str, list[str]] = field(default_factory=dict)   # flow -> run ids (keyed)
    keyed_hooks: dict[str, str] = field(default_factory=dict)     # order -> run id
    unkeyed_ok: dict[str, str] = field(default_factory=dict)      # order -> run id (2xx)
    unkeyed_lost: list[str] = field(default_factory=list)         # orders with no 2xx
    cron_tokens: list[str] = field(default_factory=list)          # one per wrapper call
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: Callable[[], None]) -> None:
        with self.lock:
            what()


class Load:
    """Starts work every `pace` seconds until stopped; each request in a thread of its own
    pool, so a client retrying through a fault does not hold back the others."""

    def __init__(self, client: Client, env: dict[str, str], rng: random.Random,
                 pace: float = 0.8, cron_every: float = 15.0):
        self.client, self.env, self.rng = client, env, rng
        self.pace, self.cron_every = pace, cron_every
        self.sent = Sent()
        self.stopped = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="soak-load")
        self.thread = threading.Thread(target=self._loop, name="soak-load", daemon=True)
        self.count = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.pool.shutdown(wait=True)

    def _loop(self) -> None:
        actions = [(self._start_run, "mix", 4), (self._start_run, "chain", 3),
                   (self._keyed_hook, "", 2), (self._unkeyed_hook, "", 1)]
        next_cron = time.monotonic() + self.cron_every / 2
        while not self.stopped.wait(self.pace):
            self.count += 1
            action, arg, _ = self.rng.choices(actions, weights=[a[2] for a in actions])[0]
            self.pool.submit(self._guard, action, arg, self.count)
            if time.monotonic() >= next_cron:
                next_cron += self.cron_every
                self.pool.submit(self._guard, self._cron, "", self.count)

    def _guard(self, action: Callable[[str, int], None], arg: str, n: int) -> None:
        try:
            action(arg, n)
        except Exception as exc:  # noqa: BLE001 - counted as a failure of the soak
            said = f"{action.__name__}#{n}: {exc}"
            self.sent.add(lambda: self.sent.errors.append(said))

    def _start_run(self, flow: str, n: int) -> None:
        answer = self.client.until_ok(
            "POST", "/api/v1/runs", json={"namespace": NAMESPACE, "flow_id": flow},
            headers={"Idempotency-Key": f"soak-{flow}-{n}"})
        run_id = answer.json()["id"]
        self.sent.add(lambda: self.sent.started.setdefault(flow, []).append(run_id))

    def _keyed_hook(self, _: str, n: int) -> None:
        order = f"k{n}"
        answer = self.client.until_ok(
            "POST", f"/api/v1/webhooks/{NAMESPACE}/hook/{HOOK_KEY}", json={"order": order},
            headers={"Idempotency-Key": order})
        self.sent.add(lambda: self.sent.keyed_hooks.__setitem__(order, answer.json()["id"]))

    def _unkeyed_hook(self, _: str, n: int) -> None:
        order = f"u{n}"
        answer = self.client.once("POST", f"/api/v1/webhooks/{NAMESPACE}/hook/{HOOK_KEY}",
                                  json={"order": order})
        if answer is not None and answer.is_success:
            self.sent.add(lambda: self.sent.unkeyed_ok.__setitem__(order, answer.json()["id"]))
        else:
            self.sent.add(lambda: self.sent.unkeyed_lost.append(order))

    def _cron(self, _: str, n: int) -> None:
        token = f"cron-{n}"
        env = {**self.env, "INTERLOCK_API_URL": self.client._url(),
               "INTERLOCK_CRON_SECRET": CRON_SECRET, "INTERLOCK_CRON_SYSTEM": CRON_SYSTEM,
               "INTERLOCK_CRON_TIMEOUT": "3"}
        done = subprocess.run([sys.executable, "-m", "interlock", "cron", "exec", "--job",
                               CRON_JOB, "--", "echo", token], env=env, capture_output=True,
                              timeout=180, check=False)
        if done.returncode != 0 or done.stdout.strip() != token.encode():
            raise RuntimeError(f"cron exec changed what crond sees: {done.returncode} "
                               f"{done.stdout!r} {done.stderr!r}")
        self.sent.add(lambda: self.sent.cron_tokens.append(token))


def flush_cron_spool(env: dict[str, str], api: str) -> str:
    """`interlock cron flush`: send what the wrapper spooled while no API answered."""
    done = subprocess.run([sys.executable, "-m", "interlock", "cron", "flush"],
                          env={**env, "INTERLOCK_API_URL": api,
                               "INTERLOCK_CRON_SECRET": CRON_SECRET},
                          capture_output=True, text=True, timeout=120, check=False)
    return (done.stdout + done.stderr).strip()


def spool_dir(env: dict[str, str]) -> Path:
    return Path(env.get("INTERLOCK_CRON_SPOOL") or os.path.join(env["INTERLOCK_HOME"],
                                                               "spool", "cron"))
