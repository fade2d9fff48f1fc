"""Flow triggers: what starts a run besides a person.

- `after:` fires on work finishing elsewhere: a foreign run (Airflow, Dagster, a cron job's
  observed run or its LATE/MISSED check) or another Interlock flow's run;
- `webhook:` fires on a POST (`fire_webhook`);
- `schedule:` ticks are fired by `interlock.triggers.schedule` through `fire`.

A firing is a unique row (`trigger_firings.key`) written in the transaction that creates
the run, so the same thing finishing (reported twice, by push and by poll, or by two API
replicas) starts the flow once. Every started run records what triggered it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.adapters.signing import MIN_SECRET_BYTES
from interlock.config.systems import SecretError
from interlock.errors import InterlockError, NotFound, SpecError
from interlock.policies import points as policy_points
from interlock.policies.model import Point
from interlock.policies.points import PolicyRefused
from interlock.spec import trigger_inputs
from interlock.spec.expressions import ExpressionError, evaluate_condition
from interlock.spec.inputs import InputError, check_inputs
from interlock.spec.models import After, Flow
from interlock.states import STATE_WORDS, RunState
from interlock.store import audit, facts, idempotency, outbox
from interlock.store import runs as run_store
from interlock.store.flows import flows_with_after, get_revision, load_flow_of
from interlock.store.outbox import Dispatcher
from interlock.store.tables import Attempt, ExternalRun, FlowRevision, NodeRun, Run, TaskKind
from interlock.triggers.types import TriggerType

log = logging.getLogger(__name__)
ACTOR = "trigger"
ANY_STATE = "any"
FLOW_SYSTEM = "interlock"  # the `system` of a finished Interlock run, in trigger contexts
# An Interlock run's deadline flags (`interlock.deadlines`): not finishing states, so `any`
# does not match them; `state: late` / `state: at_risk` name them.
DEADLINE_FLAGS = frozenset({"late", "at_risk"})


NO_WEBHOOK = "no such webhook: check the namespace, the flow id and the key"
HUB_SCHEME = "sha256="


class WebhookRefused(InterlockError):
    """A signed webhook's delivery without the right signature (401); the message is for
    the audit trail, the sender is told only that the signature is missing or wrong."""


def check_hub_signature(secret: str, *, body: bytes, given: str | None) -> None:
    """`X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>`, as GitHub signs."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise WebhookRefused(f"the webhook's secret is shorter than {MIN_SECRET_BYTES} bytes")
    if not given or not given.isascii() or not given.startswith(HUB_SCHEME):
        raise WebhookRefused("missing or malformed X-Hub-Signature-256 header")
    expected = HUB_SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise WebhookRefused("X-Hub-Signature-256 does not match the body and the secret")


@dataclass(frozen=True)
class Fired:
    flow: str
    run_id: str


@dataclass(frozen=True)
class Finished:
    """Something that finished and that `after:` triggers may wait for."""

    system: str              # a registered system, or FLOW_SYSTEM for an Interlock run
    job_id: str              # DAG id, Dagster job, cron job, or `namespace/flow-id`
    external_id: str         # the run's id there (for a cron check: `missed@<due time>`)
    state: str               # Interlock's word (NodeState / RunState value, or late/missed)
    remote_status: str       # the system's own word
    run_type: str | None = None
    started_by: str | None = None  # the flow whose run started it, if one did
    # Shown to `after.if` and the trigger's `inputs:` as `trigger.details` / `trigger.nodes`,
    # not recorded in the run's trigger (the run keeps the inputs mapped from them, and
    # the foreign run or the upstream run keeps the rest): what the foreign system said
    # about its run (an Airflow DAG run's `conf`, Dagster tags, a cron job's exit code and
    # output tail), or an Interlock run's nodes with their state and outputs.
    details: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """What the triggered run records as its trigger."""
        fields = asdict(self)
        for shown_only in ("started_by", "details", "nodes"):
            fields.pop(shown_only)
        return {"type": TriggerType.AFTER, **fields}

    def shown(self) -> dict[str, Any]:
        """What `after.if` and the trigger's `inputs:` see as `trigger`."""
        return {**self.context(), "details": self.details, "nodes": self.nodes}


def send_fired(dispatcher: Dispatcher | None, fired: Iterable[Fired]) -> None:
    """After the commit that created them, hand the started runs to ``dispatcher`` so they
    plan at once; without one, the outbox rows written with them are relayed later."""
    if dispatcher is not None:
        for started in fired:
            dispatcher.send(outbox.Work(TaskKind.ADVANCE, started.run_id))


def state_matches(wanted: list[str], finished: Finished) -> bool:
    flagged = finished.system == FLOW_SYSTEM and finished.state in DEADLINE_FLAGS
    for word in wanted:
        if word == ANY_STATE and not flagged:
            return True
        if word in (finished.state, finished.remote_status):
            return True
        if finished.state in STATE_WORDS.get(word, frozenset()):
            return True
    return False


def matches(after: After, finished: Finished) -> bool:
    if after.flow is not None:
        if (finished.system, finished.job_id) != (FLOW_SYSTEM, after.flow):
            return False
    else:
        job = after.dag_id or after.job
        if (after.system, job) != (finished.system, finished.job_id):
            return False
    return state_matches(after.states, finished)


def after_foreign_run(session: Session, run: ExternalRun, *, origin: str) -> list[Fired]:
    """Start every flow with an `after:` trigger this finished foreign run satisfies."""
    finished = Finished(system=run.system, job_id=run.job_id, external_id=run.external_id,
                        state=run.state, remote_status=run.remote_status,
                        run_type=run.run_type, started_by=_flow_that_started(session, run),
                        details=dict(run.details or {}))
    return after_finished(session, finished, origin=origin)


def after_flow_run(session: Session, run: Run, state: RunState, *,
                   origin: str) -> list[Fired]:
    """Start the flows waiting (`after: {flow: ...}`) for ``run``, which just became
    ``state`` (the row's own `state` may not show it yet: the change is a Core update)."""
    waiting = flows_with_after(session)
    if not waiting:  # nothing to match: the run's nodes are not read
        return []
    ref = f"{run.namespace}/{run.flow_id}"
    finished = Finished(system=FLOW_SYSTEM, job_id=ref, external_id=run.id, state=state.value,
                        remote_status=state.value, run_type=(run.trigger or {}).get("type"),
                        started_by=ref, nodes=_nodes_of(session, run.id))
    return after_finished(session, finished, origin=origin, waiting=waiting)


def after_finished(session: Session, finished: Finished, *, origin: str,
                   waiting: list[FlowRevision] | None = None) -> list[Fired]:
    """``waiting``: `flows_with_after`, when the caller read it already."""
    fired = []
    for revision in flows_with_after(session) if waiting is None else waiting:
        flow = load_flow_of(revision)
        if flow.ref == finished.started_by:
            continue  # a flow is never re-triggered by a run it started itself
        for trigger in flow.triggers:
            after = trigger.after
            if after is None or not matches(_resolved(after, flow), finished):
                continue
            context, shown = finished.context(), finished.shown()
            if after.if_ is not None and not condition_holds(session, flow, after, shown,
                                                              origin):
                continue
            key = (f"{flow.ref}#after:{finished.system}/{finished.job_id}/"
                   f"{finished.external_id}")
            if (started := fire(session, revision, flow, key, context, origin,
                                mapping=trigger.inputs, shown=shown)):
                fired.append(started)
    return fired


def _resolved(after: After, flow: Flow) -> After:
    """`flow: other` means `other` in the waiting flow's namespace."""
    if after.flow is None or "/" in after.flow:
        return after
    return after.model_copy(update={"flow": f"{flow.namespace}/{after.flow}"})


def condition_holds(session: Session, flow: Flow, after: After, shown: dict[str, Any],
                     origin: str) -> bool:
    assert after.if_ is not None
    try:
        return evaluate_condition(after.if_, {"trigger": shown})
    except ExpressionError as exc:
        audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_REFUSED, target=flow.ref,
                     after={"trigger": facts.bounded(shown),
                            "problems": [facts.short(f"after.if: {exc}")]},
                     origin=origin)
        log.warning("trigger condition of %s failed: %s", flow.ref, exc)
        return False


def _nodes_of(session: Session, run_id: str) -> dict[str, Any]:
    """An Interlock run's nodes as `trigger.nodes.<id>.{state, outputs}`."""
    rows = session.execute(select(NodeRun.node_id, NodeRun.state, NodeRun.outputs)
                           .where(NodeRun.run_id == run_id))
    return {node_id: {"state": state, "outputs": outputs or {}}
            for node_id, state, outputs in rows}


def _flow_that_started(session: Session, run: ExternalRun) -> str | None:
    if run.attempt_id is None:
        return None
    row = session.execute(select(Run.namespace, Run.flow_id).join(
        Attempt, Attempt.run_id == Run.id).where(Attempt.id == run.attempt_id)).first()
    return f"{row[0]}/{row[1]}" if row else None


def fire(session: Session, revision: FlowRevision, flow: Flow, key: str,
         context: dict[str, Any], origin: str, inputs: dict[str, Any] | None = None, *,
         mapping: dict[str, Any] | None = None, shown: dict[str, Any] | None = None,
         trace_id: str | None = None) -> Fired | None:
    """Start ``flow`` once for ``key``: None when it fired already or its inputs refuse.
    ``mapping`` (the trigger's `inputs:`) maps ``shown`` (default: ``context``) to inputs;
    ``trace_id`` puts the run in the trace of what fired it."""
    try:
        if mapping:
            inputs = {**(inputs or {}), **trigger_inputs.map_inputs(mapping, shown or context)}
        checked = check_inputs(flow.inputs, inputs or {})
    except InputError as exc:
        audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_REFUSED, target=flow.ref,
                     after={"trigger": facts.bounded(context),
                            "problems": facts.bounded(exc.problems)}, origin=origin)
        log.warning("trigger %s cannot start %s: inputs %s", key, flow.ref, exc.problems)
        return None
    try:
        decisions = policy_points.check(flow, Point.START, actor=ACTOR,
                                        run={"inputs": checked, "trigger": context})
    except (PolicyRefused, SpecError) as exc:  # a broken policy file refuses too
        if isinstance(exc, PolicyRefused):
            policy_points.record(session, exc.decisions, target=flow.ref, origin=origin)
        audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_REFUSED, target=flow.ref,
                     after={"trigger": facts.bounded(context),
                            "problems": facts.short(str(exc))}, origin=origin)
        log.warning("trigger %s cannot start %s: %s", key, flow.ref, exc)
        return None
    if not idempotency.claim(session, key=key, namespace=flow.namespace, flow_id=flow.id):
        return None  # fired already
    run_id = run_store.create_run(session, revision=revision, inputs=checked, trigger=context,
                                  actor=ACTOR, trace_id=trace_id)
    policy_points.record(session, decisions, target=f"runs/{run_id}", origin=origin)
    idempotency.bind(session, key=key, run_id=run_id)
    audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_FIRED, target=flow.ref,
                 after={"run_id": run_id, "trigger": facts.bounded(context)}, origin=origin)
    return Fired(flow.ref, run_id)


def fire_webhook(session: Session, *, namespace: str, flow_id: str, key: str,
                 payload: dict[str, Any], origin: str, idempotency_key: str | None = None,
                 body: bytes = b"", signature: str | None = None) -> tuple[str, bool]:
    """Start the flow whose `webhook:` trigger has ``key``; the payload is its inputs.

    Returns (run id, created). With an ``idempotency_key``, a repeated delivery returns
    the run the first one started. Raises NotFound (no such flow or key: the same bytes,
    so keys cannot be probed), WebhookRefused (the trigger has a `secret` and ``signature``
    is not the HMAC of the raw ``body``) and InputError (a field the inputs refuse).
    """
    try:
        revision = get_revision(session, namespace=namespace, flow_id=flow_id)
    except NotFound:
        raise NotFound(NO_WEBHOOK) from None
    flow = load_flow_of(revision)
    trigger = next((t for t in flow.triggers
                    if t.webhook is not None and t.webhook.key == key), None)
    if trigger is None or trigger.webhook is None:
        raise NotFound(NO_WEBHOOK)
    hook = trigger.webhook
    if hook.secret is not None:
        try:
            secret = hook.secret.resolve(system=f"webhook {flow.ref}/{key}")
        except SecretError as exc:
            raise WebhookRefused(str(exc)) from None
        check_hub_signature(secret, body=body, given=signature)
    context = {"type": TriggerType.WEBHOOK, "key": key, "origin": origin}
    if trigger.inputs:  # the body is what fired, mapped into inputs (a failure is 422)
        payload = trigger_inputs.map_inputs(trigger.inputs, {**context, "body": payload})
    inputs = check_inputs(flow.inputs, payload)
    decisions = policy_points.check(flow, Point.START, actor=ACTOR,  # 422 when refused
                                    run={"inputs": inputs, "trigger": context})
    if idempotency_key:
        firing = f"{flow.ref}#webhook:{key}:{idempotency_key}"
        context["idempotency_key"] = idempotency_key
        if not idempotency.claim(session, key=firing, namespace=flow.namespace,
                                 flow_id=flow.id):
            return idempotency.earlier_run(session, firing), False
    run_id = run_store.create_run(session, revision=revision, inputs=inputs, trigger=context,
                                  actor=ACTOR)
    policy_points.record(session, decisions, target=f"runs/{run_id}", origin=origin)
    if idempotency_key:
        idempotency.bind(session, key=firing, run_id=run_id)
    audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_FIRED, target=flow.ref,
                 after={"run_id": run_id, "trigger": facts.bounded(context)}, origin=origin)
    return run_id, True
