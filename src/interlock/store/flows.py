"""Flow revisions: every change of a flow's source is a new revision; runs pin one."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.errors import NotFound
from interlock.spec.models import Flow
from interlock.store.tables import FlowRevision


def register_flow(session: Session, *, flow: Flow, source: str) -> FlowRevision:
    """The revision for ``source``: the existing one if unchanged, else a new one."""
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
                            created_at=clock.now())
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


_FLOWS: dict[tuple[int, str], Flow] = {}


def load_flow_of(revision: FlowRevision) -> Flow:
    """Parsed flow of a stored revision; revisions never change, so it is cached."""
    key = (revision.id, revision.digest)
    if key not in _FLOWS:
        if len(_FLOWS) > 1024:
            _FLOWS.clear()
        _FLOWS[key] = Flow.model_validate(revision.spec)
    return _FLOWS[key]
