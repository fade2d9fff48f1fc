"""The store's tables, one module per concern. The store, never Celery's result backend, is
the source of truth. Importing this package registers every table on `Base.metadata`."""

from interlock.store.base import Base, rowcount
from interlock.store.tables import lineage
from interlock.store.tables.access import ApiToken
from interlock.store.tables.agents import AgentSession, AgentStep, StepKind, StepState
from interlock.store.tables.approvals import ApprovalOrigin, ApprovalRequest, ApprovalVote
from interlock.store.tables.audit import AuditHead, AuditRecord
from interlock.store.tables.cron import CronCheck
from interlock.store.tables.datasets import DatasetUpdate, DatasetWait, WatchPosition
from interlock.store.tables.deadlines import Deadline, DeadlineState
from interlock.store.tables.launches import LaunchClaim
from interlock.store.tables.limits import ConcurrencyScope
from interlock.store.tables.notifications import Notification, NotificationState
from interlock.store.tables.observed import ExternalRun, ScheduleCursor, TriggerFiring
from interlock.store.tables.runs import (
    ATTEMPTS,
    NODE_RUNS,
    OUTBOX,
    RUNS,
    Attempt,
    Entity,
    FlowRevision,
    NodeRun,
    Outbox,
    Run,
    StateEvent,
    TaskKind,
)

__all__ = ["ATTEMPTS", "AgentSession", "AgentStep", "ApiToken", "ApprovalOrigin",
           "ApprovalRequest", "ApprovalVote",
           "Attempt", "AuditHead", "AuditRecord", "Base", "ConcurrencyScope", "CronCheck",
           "DatasetUpdate", "DatasetWait",
           "Deadline", "DeadlineState", "Entity", "ExternalRun", "FlowRevision",
           "LaunchClaim", "NODE_RUNS", "NodeRun",
           "Notification", "NotificationState", "OUTBOX", "Outbox", "RUNS", "Run",
           "ScheduleCursor", "StateEvent", "StepKind", "StepState", "TaskKind",
           "TriggerFiring", "WatchPosition", "lineage", "rowcount"]
