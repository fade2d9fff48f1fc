"""Flow revisions: every change of a flow's source is a new revision; runs pin one."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from interlock import clock
from interlock.errors import NotFound
from interlock.spec.models import Flow
from interlock.store.tables import FlowRevision, Run


def register_flow(session: Session, *, flow: Flow, source: str,
                  author: str | None = None) -> FlowRevision:
    """The revision for ``source``: the existing one if unchanged (its first author stays),
    else a new one by ``author`` (who may then not approve its gates)."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    found = session.scalars(select(FlowRevision).where(
        FlowRevision.namespace == flow.namespace, FlowRevision.flow_id == flow.id,
        FlowRevision.digest == digest)).first()
    if found is not None:
        return found
    latest = session.scalar(select(func.max(FlowRevision.revision)).where(
        FlowRevision.namespace == flow.namespace, FlowRevision.flow_id == flow.id)) or 0
    revision = FlowRevision(namespace=flow.namespace, flow_id=flow.id, revision=latest + 1,
                            digest=digest, source=source,
                            spec=flow.model_dump(mode="json", by_alias=True),
                            created_at=clock.now(), created_by=author)
    session.add(revision)
    session.flush()
    return revision


def get_revision(session: Session, *, namespace: str, flow_id: str,
                 revision: int | None = None) -> FlowRevision:
    query = select(FlowRevision).where(FlowRevision.namespace == namespace,
                                       FlowRevision.flow_id == flow_id)
    query = query.where(FlowRevision.revision == revision) if revision is not None \
        else query.order_by(FlowRevision.revision.desc())
    found = session.scalars(query.limit(1)).first()
    if found is None:
        which = f" revision {revision}" if revision is not None else ""
        raise NotFound(f"flow `{namespace}/{flow_id}`{which} is not registered")
    return found


def list_revisions(session: Session, *, namespace: str, flow_id: str) -> list[FlowRevision]:
    return list(session.scalars(select(FlowRevision).where(
        FlowRevision.namespace == namespace, FlowRevision.flow_id == flow_id)
        .order_by(FlowRevision.revision)))


def list_flows(session: Session) -> list[FlowRevision]:
    """The newest revision of every flow."""
    newest = (select(FlowRevision.namespace, FlowRevision.flow_id,
                     func.max(FlowRevision.revision).label("revision"))
              .group_by(FlowRevision.namespace, FlowRevision.flow_id).subquery())
    return list(session.scalars(
        select(FlowRevision).join(newest, (FlowRevision.namespace == newest.c.namespace)
                                  & (FlowRevision.flow_id == newest.c.flow_id)
                                  & (FlowRevision.revision == newest.c.revision))
        .order_by(FlowRevision.namespace, FlowRevision.flow_id)))


# The newest revisions with an `after:` trigger, by database, valid while no revision is added.
_WAITING: dict[str, tuple[int | None, list[int]]] = {}


def flows_with_after(session: Session) -> list[FlowRevision]:
    """Newest revisions of the flows that have an `after:` trigger. Asked each time a run
    finishes, so it costs one indexed max() unless a flow was registered since."""
    database = _database_of(session)
    newest_id = session.scalar(select(func.max(FlowRevision.id)))
    cached = _WAITING.get(database)
    if cached is None or cached[0] != newest_id:
        ids = [r.id for r in list_flows(session)
               if any(t.after is not None for t in load_flow_of(r).triggers)]
        cached = _WAITING[database] = (newest_id, ids)
    return [r for i in cached[1] if (r := session.get(FlowRevision, i)) is not None]


# Parsed flows by (database, revision id): revisions never change once written.
_FLOWS: dict[tuple[str, int], Flow] = {}
_CACHE_SIZE = 1024


def load_flow_of(revision: FlowRevision) -> Flow:
    session = object_session(revision)
    key = (_database_of(session), revision.id) if session is not None else None
    if key is not None and key in _FLOWS:
        return _FLOWS[key]
    flow = Flow.model_validate(revision.spec)
    if key is not None:
        _remember(key, flow)
    return flow


def flow_of_run(session: Session, run: Run) -> Flow:
    """The flow a run pinned, without reading its revision row when it is cached."""
    key = (_database_of(session), run.flow_revision_id)
    if key not in _FLOWS:
        revision = session.get(FlowRevision, run.flow_revision_id)
        assert revision is not None  # a foreign key
        _remember(key, Flow.model_validate(revision.spec))
    return _FLOWS[key]


def _remember(key: tuple[str, int], flow: Flow) -> None:
    if len(_FLOWS) >= _CACHE_SIZE:
        _FLOWS.clear()
    _FLOWS[key] = flow


def _database_of(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)
