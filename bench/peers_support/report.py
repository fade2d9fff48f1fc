"""The table `bench/peers.py` prints, and its "Peers" section of docs/benchmarks.md."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTION = "## Peers"
NAMES = {"interlock": "Interlock (Celery)", "embedded": "Interlock embedded",
         "prefect": "Prefect 3.9.1", "airflow": "Airflow 3.3.2"}


METHOD = (
    "The workload is bench/throughput.py's flow (a -> b -> c, each adding one to the number "
    "it is given) and its like in each peer: a Prefect flow of three `@task` functions "
    "(`peers_support/prefect_client.py`), an Airflow DAG of three `@task` functions "
    "(`peers_support/airflow_dags/peers_noop.py`; real task executions, not `EmptyOperator`, "
    "which Airflow's scheduler marks done without running). Each system keeps a bounded "
    "number of runs in flight: Interlock (Celery) ≤ 50 on 2 workers × 8 threads, started by "
    "8 threads (bench/throughput.py's submitters; `--interlock-*` change these), Redis and "
    "PostgreSQL; Interlock embedded ≤ 20 on 4 dispatcher threads and SQLite; Prefect N "
    "client processes each calling its flow in a loop against `prefect server start` on "
    "PostgreSQL (N: the best of the sweep in the notes, found in round 1); Airflow ≤ 16 DAG "
    "runs (its default `max_active_runs_per_dag`) triggered with `POST "
    "/api/v2/dags/{id}/dagRuns`, `airflow standalone` from the test harness with "
    "LocalExecutor at the harness's parallelism 4.",
    "",
    "runs/s: runs finished within the window ÷ the window. start→finish: run created → "
    "run finished (Interlock: the store's timestamps; Prefect: the client's flow call; "
    "Airflow: the DAG run's `queued_at` → `end_date`), over every run started in the "
    "window. CPU s/run: CPU seconds over the window of the system's processes (the driver "
    "and all it spawned: Interlock's submitters and workers, Prefect's server and clients, "
    "Airflow's standalone and its triggering client) and of the PostgreSQL backends of its "
    "own database, from /proc, ÷ the runs finished in the window. Redis is not counted (it "
    "is shared with other work; about 1 % of a core in earlier profiles).",
    "",
    "Airflow differs from the test harness in three settings: the metadata database is "
    "PostgreSQL (the harness uses SQLite, with LocalExecutor, and its venv has no "
    "PostgreSQL driver, so the bench installs `apache-airflow==3.3.2` with "
    "`apache-airflow-providers-postgres` into a venv of its own), no plugins (the "
    "harness loads Interlock's listener), and no OpenLineage provider.",
)


@dataclass
class Context:
    date: str
    duration: float
    rounds: int
    uptime_before: str
    uptime_after: str
    installs: dict[str, str]
    command: str


def line(m: Any) -> str:
    """One measurement, as printed when it ends."""
    if m.error:
        return f"[round {m.round}] {m.system}: FAILED: {m.error}"
    r = m.result
    cpu = f"{m.cpu / r['runs_in_window']:.3f} CPU s/run" if m.cpu and r["runs_in_window"] \
        else "CPU n/a"
    return (f"[round {m.round}] {m.system}: {r['runs_per_s']:.2f} runs/s "
            f"({r['runs_in_window']} in {r['duration']:.0f} s, {r['failed']} failed), "
            f"p50 {_s(r['p50'])}, p99 {_s(r['p99'])}, {cpu}"
            + (f", {r['config']}" if r.get("config") else ""))


def table(measurements: list[Any], systems: list[str]) -> str:
    rows = ["| system | runs/s (mean) | round 1 / round 2 | spread | p50 | p99 | CPU s/run "
            "| runs/s ÷ Interlock |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    base = _mean_rate([m for m in measurements if m.system == "interlock" and not m.error])
    for system in systems:
        mine = [m for m in measurements if m.system == system]
        ok = [m for m in mine if not m.error]
        if not ok:
            rows.append(f"| {NAMES[system]} | failed: see notes | | | | | | |")
            continue
        rates = [m.result["runs_per_s"] for m in ok]
        mean = statistics.mean(rates)
        spread = (f"{(max(rates) - min(rates)) / mean * 100:.0f} %" if len(rates) > 1 and mean
                  else "n/a")
        cpus = [m.cpu / m.result["runs_in_window"] for m in ok
                if m.cpu is not None and m.result["runs_in_window"]]
        ratio = "1.00×" if system == "interlock" else (
            f"{mean / base:.2f}× (Interlock {base / mean:.1f}×)" if base and mean else "n/a")
        rows.append(
            f"| {NAMES[system]} | {mean:.2f} | {' / '.join(f'{x:.2f}' for x in rates)} "
            f"| {spread} | {_s(_mean(m.result['p50'] for m in ok))} "
            f"| {_s(_mean(m.result['p99'] for m in ok))} "
            f"| {f'{statistics.mean(cpus):.3f}' if cpus else 'n/a'} | {ratio} |")
    return "\n".join(rows)


def notes(measurements: list[Any]) -> list[str]:
    out = []
    for m in measurements:
        for note in m.notes:
            out.append(f"round {m.round}, {m.system}: {note}")
        if m.result.get("config"):
            out.append(f"round {m.round}, {m.system}: measured with {m.result['config']}")
        if m.error:
            out.append(f"round {m.round}, {m.system}: FAILED: {m.error}")
    return out


def write_doc(path: Path, table_text: str, measurements: list[Any], ctx: Context) -> None:
    """Replace (or append) the ``## Peers`` section, leaving every other section alone."""
    doc = path.read_text()
    section = _section(table_text, measurements, ctx)
    match = re.search(rf"^{re.escape(SECTION)}\b.*?(?=^## |\Z)", doc, flags=re.M | re.S)
    if match:
        doc = doc[:match.start()] + section + doc[match.end():]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    path.write_text(doc)


def _section(table_text: str, measurements: list[Any], ctx: Context) -> str:
    failed = sorted({m.system for m in measurements if m.error})
    lines = [
        f"{SECTION}: the same workload on Interlock, Prefect and Airflow (`bench/peers.py`)",
        "",
        "    python bench/peers.py              # 60 s windows, 2 rounds; --quick: 15 s",
        "",
        f"Measured {ctx.date} on this machine (`{ctx.command}`), {ctx.duration:.0f} s per "
        f"system per round, {ctx.rounds} rounds (the second in reverse order), each system "
        "alone with a fresh PostgreSQL database. Load before: `" + ctx.uptime_before + "`; "
        "after: `" + ctx.uptime_after + "`.",
        "",
        table_text,
        "",
        *METHOD,
        "",
        "Notes from the run:",
        "",
        *(f"- {n}" for n in notes(measurements)),
        *(f"- install: {system}: {what}" for system, what in ctx.installs.items()),
        "",
    ]
    if failed:
        lines += [f"**TODO:** {', '.join(failed)} did not produce a figure in this run "
                  "(the reason is in the notes above).", ""]
    return "\n".join(lines) + "\n"


def _mean_rate(ms: list[Any]) -> float | None:
    return statistics.mean(m.result["runs_per_s"] for m in ms) if ms else None


def _mean(values: Any) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.mean(found) if found else None


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
