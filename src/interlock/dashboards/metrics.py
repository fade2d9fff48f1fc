"""Prometheus metrics for `GET /metrics`, computed from the store at each scrape.

Nothing is counted in process memory: every API replica answers with the same numbers
whatever the number of replicas and workers (so scrape one of them, or de-duplicate).
Each scrape builds a fresh registry around one collector that holds the families read in
one store transaction, and prometheus-client writes the text format (0.0.4) and its escaping.

Label cardinality is bounded:
- `state`, `status`, `uses`, `kind`, `quantile`: closed enums or installed adapter kinds;
- `namespace`/`flow`: the first `TOP_FLOWS` registered flows (by first registration, a set
  that never changes, so counters stay monotonic); later flows are summed into
  `namespace="_other", flow="_other"` (and have no duration quantiles);
- `system`: at most `MAX_SYSTEMS` names, in order; the rest are summed into `_other`;
- `job` (cron): at most `MAX_CRON_JOBS` jobs, in (system, job) order; the rest are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from interlock import __version__
from interlock.cron.checks import CheckStatus
from interlock.dashboards.keys import attempt_system
from interlock.dashboards.percentiles import QUANTILES, distributions
from interlock.states import NODE_IN_FLIGHT, RUN_TERMINAL
from interlock.store.tables import (
    Attempt,
    AuditHead,
    CronCheck,
    Entity,
    ExternalRun,
    FlowRevision,
    Outbox,
    Run,
    StateEvent,
    TaskKind,
)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
TOP_FLOWS = 100
MAX_SYSTEMS = 200
MAX_CRON_JOBS = 1000
DURATION_WINDOW = timedelta(hours=24)
OTHER = "_other"

Flow = tuple[str, str]


class _Families:
    """A collector over families read already (a registry asks it once per scrape)."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def scrape(session: Session, *, now: datetime, top_flows: int = TOP_FLOWS) -> bytes:
    """The exposition text of every metric, read from the store now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(collect(session, now=now, top_flows=top_flows)))
    return generate_latest(registry)


def collect(session: Session, *, now: datetime, top_flows: int = TOP_FLOWS) -> list[Metric]:
    shown = _shown_flows(session, top_flows)
    return [_build_info(), _runs(session, shown), _runs_finished(session, shown),
            *_durations(session, shown, now), _in_flight(session), *_outbox(session, now),
            _cron_checks(session), _audit(session), _external_runs(session)]


def _build_info() -> Metric:
    family = GaugeMetricFamily("interlock_build_info", "Always 1; the version serving /metrics.",
                               labels=["version"])
    family.add_metric([__version__], 1)
    return family


def _shown_flows(session: Session, limit: int) -> set[Flow]:
    first = func.min(FlowRevision.id)
    query = (select(FlowRevision.namespace, FlowRevision.flow_id)
             .group_by(FlowRevision.namespace, FlowRevision.flow_id)
             .order_by(first).limit(limit))
    return {(ns, fid) for ns, fid in session.execute(query)}


def _fold(flow: Flow, shown: set[Flow]) -> Flow:
    return flow if flow in shown else (OTHER, OTHER)


def _runs(session: Session, shown: set[Flow]) -> Metric:
    family = GaugeMetricFamily(
        "interlock_runs", "Runs in each state now, all time (not a window), per flow.",
        labels=["state", "namespace", "flow"])
    counts: Counter[tuple[str, str, str]] = Counter()
    query = (select(Run.namespace, Run.flow_id, Run.state, func.count())
             .group_by(Run.namespace, Run.flow_id, Run.state))
    for ns, fid, state, count in session.execute(query):
        counts[(state, *_fold((ns, fid), shown))] += count
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def _runs_finished(session: Session, shown: set[Flow]) -> Metric:
    family = CounterMetricFamily(
        "interlock_runs_finished", "Times runs reached a terminal state, from the append-only "
        "state events (a retried run that ends again counts again).",
        labels=["namespace", "flow", "state"])
    counts: Counter[tuple[str, str, str]] = Counter()
    query = (select(Run.namespace, Run.flow_id, StateEvent.to_state, func.count())
             .join(Run, Run.id == StateEvent.run_id)
             .where(StateEvent.entity == Entity.RUN.value,
                    StateEvent.to_state.in_([s.value for s in RUN_TERMINAL]))
             .group_by(Run.namespace, Run.flow_id, StateEvent.to_state))
    for ns, fid, state, count in session.execute(query):
        counts[(*_fold((ns, fid), shown), state)] += count
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def _durations(session: Session, shown: set[Flow], now: datetime) -> tuple[Metric, Metric]:
    quantiles = GaugeMetricFamily(
        "interlock_run_duration_seconds", "Created -> finished of the runs created in the last "
        f"{DURATION_WINDOW.total_seconds() / 3600:g} h that finished, per flow: quantiles "
        "(linear interpolation) of a sliding window, hence a gauge.",
        labels=["namespace", "flow", "quantile"])
    samples = GaugeMetricFamily(
        "interlock_run_duration_samples", "Finished runs the duration quantiles are of.",
        labels=["namespace", "flow"])
    if shown:
        found = distributions(
            session, start=Run.created_at, end=Run.finished_at, keys=[Run.namespace, Run.flow_id],
            where=[tuple_(Run.namespace, Run.flow_id).in_(sorted(shown)),
                   Run.created_at >= now - DURATION_WINDOW])
        for (ns, fid), dist in sorted(found.items()):
            samples.add_metric([ns, fid], dist.count)
            for q in QUANTILES:
                quantiles.add_metric([ns, fid, f"{q:g}"], dist.quantiles[q])
    return quantiles, samples


def _capped(names: Iterable[str], limit: int) -> dict[str, str]:
    """Each name to its label: itself for the first ``limit`` in order, else `_other`."""
    ordered = sorted(set(names))
    return {name: name if i < limit else OTHER for i, name in enumerate(ordered)}


def _in_flight(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "interlock_attempts_in_flight", "Attempts queued or running now, by adapter and system "
        "(a system-less adapter's system is its kind).", labels=["uses", "system"])
    system = attempt_system()
    rows = session.execute(select(Attempt.uses, system, func.count())
                           .where(Attempt.state.in_([s.value for s in NODE_IN_FLIGHT]))
                           .group_by(Attempt.uses, system)).all()
    label = _capped((name for _, name, _ in rows), MAX_SYSTEMS)
    counts: Counter[tuple[str, str]] = Counter()
    for uses, name, count in rows:
        counts[(uses, label[name])] += count
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def _outbox(session: Session, now: datetime) -> tuple[Metric, Metric]:
    backlog = GaugeMetricFamily(
        "interlock_outbox_backlog", "Outbox rows: work owed by dispatch (sent or not yet done).",
        labels=["kind"])
    counts = dict(session.execute(select(Outbox.kind, func.count()).group_by(Outbox.kind)).all())
    for kind in sorted({k.value for k in TaskKind} | set(counts)):  # every kind, 0 when none
        backlog.add_metric([kind], counts.get(kind, 0))
    oldest_at = session.scalar(select(func.min(Outbox.created_at)))
    oldest = GaugeMetricFamily(
        "interlock_outbox_oldest_seconds", "Age of the oldest outbox row; 0 when it is empty.",
        value=max((now - oldest_at).total_seconds(), 0.0) if oldest_at else 0.0)
    return backlog, oldest


def _cron_checks(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "interlock_cron_checks", "1 for the status of each monitored cron job's newest expected "
        "run, 0 for the other statuses.", labels=["system", "job", "status"])
    newest = (select(CronCheck.system, CronCheck.job_id, func.max(CronCheck.due_at).label("due"))
              .group_by(CronCheck.system, CronCheck.job_id)
              .order_by(CronCheck.system, CronCheck.job_id).limit(MAX_CRON_JOBS).subquery())
    query = (select(CronCheck.system, CronCheck.job_id, CronCheck.status)
             .join(newest, and_(CronCheck.system == newest.c.system,
                                CronCheck.job_id == newest.c.job_id,
                                CronCheck.due_at == newest.c.due))
             .order_by(CronCheck.system, CronCheck.job_id))
    for system, job, status in session.execute(query):
        for each in CheckStatus:
            family.add_metric([system, job, each.value], 1 if each.value == status else 0)
    return family


def _audit(session: Session) -> Metric:
    seq = session.scalar(select(AuditHead.seq)) or 0  # the chain's last sequence number
    return CounterMetricFamily("interlock_audit_records", "Records appended to the audit trail.",
                               value=seq)


def _external_runs(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "interlock_external_runs", "Runs seen in foreign systems (ours and theirs), by their "
        "state now: a gauge, since a run moves between states.", labels=["system", "state"])
    rows = session.execute(select(ExternalRun.system, ExternalRun.state, func.count())
                           .group_by(ExternalRun.system, ExternalRun.state)).all()
    label = _capped((system for system, _, _ in rows), MAX_SYSTEMS)
    counts: Counter[tuple[str, str]] = Counter()
    for system, state, count in rows:
        counts[(label[system], state)] += count
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family
