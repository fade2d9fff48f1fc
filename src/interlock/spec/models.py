"""Pydantic models of a flow document (DESIGN.md section 2).

Field names follow the YAML; `with` and `if` are Python keywords, hence the aliases.
Graph-level rules (needs, cycles, expressions, adapters) live in `spec.checks`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from interlock.adapters.contract import RetryMode
from interlock.config.cron_macros import MACROS
from interlock.config.systems import SecretRef
from interlock.spec.approvals import DECISION_KIND, ApprovalGate
from interlock.spec.concurrency import Concurrency
from interlock.spec.fields import Duration, Strict, TimeZone
from interlock.spec.fields import InputSpec as InputSpec  # re-exported
from interlock.spec.fields import InputType as InputType  # re-exported
from interlock.spec.sla import Sla

SLUG = r"^[A-Za-z][A-Za-z0-9_-]{0,127}$"
NAMESPACE = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$"



def _check_cron(expr: str) -> str:
    fields = expr.split()
    is_macro = len(fields) == 1 and fields[0] in MACROS
    if not (is_macro or (len(fields) == 5 and croniter.is_valid(expr))):
        raise ValueError(f"bad cron expression {expr!r}: use five fields "
                         "(minute hour day-of-month month day-of-week), e.g. '0 6 * * 1-5', "
                         "or a macro such as @daily")
    return expr


CronExpr = Annotated[str, AfterValidator(_check_cron)]


class Retry(Strict):
    mode: RetryMode = Field(default=RetryMode.NEW, description=(
        "how attempts after the first run: `new` job, or the adapter's native retry "
        "(`clear_failed` for airflow, `from_failure` for dagster)"))
    attempts: int = Field(default=1, ge=1, le=100, description="total attempts, the first included")
    backoff: Duration = Field(default=0.0, description="wait before the second attempt")
    factor: float = Field(default=2.0, ge=1.0, description="backoff multiplier per attempt")
    max_backoff: Duration = Field(default=3600.0)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...)."""
        return min(self.backoff * self.factor ** max(attempt - 2, 0), self.max_backoff)


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"  # run only when every upstream node succeeded
    ALL_DONE = "all_done"        # run once every upstream node finished, whatever its state


class Dataset(Strict):
    namespace: str
    name: str


class Node(Strict):
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list)
    if_: str | None = Field(default=None, alias="if")
    retry: Retry = Field(default_factory=Retry)
    timeout: Duration | None = None
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    produces: list[Dataset] = Field(default_factory=list)
    consumes: list[Dataset] = Field(default_factory=list)
    description: str = ""
    approval: ApprovalGate | None = Field(default=None, description=(
        "a human decision before the node is submitted (`uses: approval`: the decision is "
        "the node)"))
    sla: Sla | None = Field(default=None, description=(
        "when the node must be done: `max_duration` from its first attempt, `deadline` "
        "HH:MM in a timezone (docs/deadlines.md)"))

    @model_validator(mode="after")
    def _decision_has_gate(self) -> Node:
        if self.uses == DECISION_KIND and self.approval is None:
            raise ValueError("`uses: approval` needs `approval:` (at least `subject:` and "
                             "`rules:`)")
        return self

    @property
    def gated(self) -> bool:
        return self.approval is not None

    @property
    def decision_only(self) -> bool:
        return self.uses == DECISION_KIND


class CatchUp(StrEnum):
    NONE = "none"  # after downtime, skip missed ticks
    LAST = "last"  # fire the most recent missed tick once
    ALL = "all"    # fire every missed tick


class Schedule(Strict):
    cron: CronExpr
    timezone: TimeZone = "UTC"
    catchup: CatchUp = CatchUp.LAST


class Webhook(Strict):
    key: str = Field(pattern=SLUG)
    secret: SecretRef | None = Field(default=None, description=(
        "HMAC-SHA256 key, `{env: NAME}` or `{file: PATH}`: deliveries must then carry "
        "`X-Hub-Signature-256: sha256=<hex of HMAC(secret, raw body)>`"))


class After(Strict):
    """Start this flow when work elsewhere finishes: another Interlock flow (`flow:`) or a
    job in a registered system (`system:` plus `dag_id:` or `job:`); or when data is
    updated by any system (`dataset:`, or `datasets:` with `mode: all`)."""

    state: str | list[str] = Field(default="success", description=(
        "the finishing state(s) that fire: success, failed, cancelled, any, the system's own "
        "word (e.g. Airflow's `upstream_failed`), or for cron jobs `late` / `missed`"))
    system: str | None = Field(default=None, description="a registered system, e.g. cron/db1")
    dag_id: str | None = None
    job: str | None = None
    flow: str | None = Field(default=None, description="`flow-id` (same namespace) or "
                             "`namespace/flow-id`")
    if_: str | None = Field(default=None, alias="if", description=(
        "an expression over `trigger` (what finished) that must be true, e.g. "
        "\"{{ trigger.run_type == 'scheduled' }}\""))
    dataset: str | None = Field(default=None, max_length=700, description=(
        "`<namespace>/<name>` of a dataset: fires on each update of it by any system (a "
        "node's `produces:`, a Dagster materialization, an Airflow asset event mapped in "
        "`mappings/datasets.yaml`)"))
    datasets: list[Annotated[str, Field(max_length=700)]] | None = Field(
        default=None, min_length=1, max_length=50, description=(
            "several datasets; with `mode: all` fires once all were updated since the "
            "flow last fired this way, with `mode: any` on each update of any"))
    mode: Literal["any", "all"] = "any"

    @model_validator(mode="after")
    def _one_source(self) -> After:
        job = self.dag_id or self.job
        data = self.dataset is not None or self.datasets is not None
        if sum((self.flow is not None, bool(self.system or job), data)) > 1:
            raise ValueError("`after:` names one of: a `flow:`, a `system:` with its job, or "
                             "`dataset:`/`datasets:`")
        if self.dataset is not None and self.datasets is not None:
            raise ValueError("`after:` names `dataset:` or `datasets:`, not both")
        if not data and self.flow is None and not (self.system and job):
            raise ValueError("`after:` needs `flow: <flow-id>`, or `system:` with `dag_id:` "
                             "or `job:` (e.g. {system: cron/db1, job: backup}), or "
                             "`dataset: <namespace>/<name>`")
        if self.mode == "all" and self.datasets is None:
            raise ValueError("`mode: all` goes with `datasets: [...]`")
        return self

    @property
    def watched_datasets(self) -> list[str]:
        """The datasets this trigger waits for (none for a flow or job trigger)."""
        return [self.dataset] if self.dataset is not None else list(self.datasets or [])

    @property
    def states(self) -> list[str]:
        return [self.state] if isinstance(self.state, str) else list(self.state)


class Trigger(Strict):
    schedule: Schedule | None = None
    webhook: Webhook | None = None
    after: After | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, description=(
        "the run's inputs from what fired it: input name -> an expression over `trigger` "
        "(`\"{{ trigger.details.conf.day }}\"`, `\"{{ trigger.nodes.load.outputs.rows }}\"`, "
        "`\"{{ trigger.body.order_id }}\"`); a webhook's body is then only `trigger.body`"))

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [k for k in ("schedule", "webhook", "after") if getattr(self, k) is not None]
        empty = [k for k in self.model_fields_set if getattr(self, k) is None]
        if empty and not given:
            raise ValueError(f"`{empty[0]}` needs its settings, e.g. "
                             + {"schedule": "{cron: '0 6 * * *'}", "webhook": "{key: new-order}",
                                "after": "{flow: other-flow, state: success}"}[empty[0]])
        if len(given) != 1:
            raise ValueError("a trigger has exactly one of `schedule`, `webhook` or `after`")
        return self


class Flow(Strict):
    id: str = Field(pattern=SLUG)
    namespace: str = Field(default="default", pattern=NAMESPACE, max_length=200)
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict, max_length=50, description=(
        "e.g. owner, data_class: what policies may require"))
    sla: Sla | None = Field(default=None, description=(
        "when a run must be done: `max_duration` from its creation, `deadline` HH:MM in a "
        "timezone; LATE and at_risk are flagged, audited and notified (docs/deadlines.md)"))
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    concurrency: Concurrency | None = Field(default=None, description=(
        "at most `limit` runs in flight; `behavior`: queue | cancel_new | fail_new"))
    triggers: list[Trigger] = Field(default_factory=list)
    nodes: dict[str, Node] = Field(min_length=1)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.id}"
