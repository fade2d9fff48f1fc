"""Airflow's human-in-the-loop requests (`HITLOperator`, `ApprovalOperator`) as `ForeignApproval`s.

Airflow 3.3 keeps one `hitlDetails` record per waiting task instance (its task waits in the
`awaiting_input` state):

    GET   /api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false&state=awaiting_input
    GET   /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails
    PATCH (the same path)  {"chosen_options": [...], "params_input": {...}}

The PATCH answers 409 once the request was answered, 403 when the caller is not one of its
`assigned_users`, 400 for an option it does not offer. A request's `ref` is its four keys,
each percent-encoded, joined by `/`: `dag_id/dag_run_id/task_id/map_index`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from http import HTTPStatus
from typing import Any, NoReturn
from urllib.parse import quote, unquote

import airflow_client.client as af

from interlock.adapters import Conflict, ForeignApproval, Rejected, Transient, clock
from interlock_airflow.client import AirflowSession, RemoteNotFound

PAGE = 100               # Airflow's default `maximum_page_limit`
MAX_PENDING = 1000       # an inbox, not an export: stop paging after this many
# Task instances that wait for a person: 3.3 parks them in `awaiting_input`; 3.1 and 3.2
# deferred them to a trigger.
WAITING_STATES = ["awaiting_input", "deferred"]
ALL = "~"                # Airflow's wildcard for a DAG id or run id in a path
REF_PARTS = 4
MAX_KEY = 250            # Airflow's limit on DAG, task and run ids
# Three ids of 4-byte characters, each byte percent-encoded (`%XX`), the map index, the `/`s.
MAX_REF = 3 * MAX_KEY * 4 * len("%XX") + 16
_KEY = re.compile(r"[\w.-]+")  # Airflow's own rule for DAG and task ids (`validate_key`)
_MAP_INDEX = re.compile(r"-1|0|[1-9][0-9]{0,8}")
# Ids that would read as something else in a URL path: dot segments, Airflow's wildcard.
_NOT_IDS = frozenset({".", "..", ALL})
# Airflow 3.3.2 fails a task answered before its scheduler has processed the exit of the
# process that parked it (the resumed task then reads as "killed externally"): that exit
# comes after the task's listeners ran, then a scheduler loop sees it. Younger: Transient.
# 5 s was seen to be too short on a loaded 2-core host (the scheduler took 10 s).
SETTLE_SECONDS = 15.0
# Airflow's 403 detail when the caller is not among the request's assigned users
# (airflow/api_fastapi/core_api/routes/public/hitl.py); other 403s are token problems.
NOT_ASSIGNED = "is not a respondent"


# --- refs -------------------------------------------------------------------------------------


def make_ref(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    return "/".join(quote(part, safe="") for part in (dag_id, run_id, task_id, str(map_index)))


def parse_ref(ref: object) -> tuple[str, str, str, int]:
    """(dag_id, run_id, task_id, map_index) of a ref from outside; Rejected unless it is
    exactly what `make_ref` makes of ids Airflow could hold."""
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF:
        _bad_ref(f"not a string of 1 to {MAX_REF} characters")
    parts = ref.split("/")
    if len(parts) != REF_PARTS:
        _bad_ref(f"expected {REF_PARTS} `/`-separated parts, got {len(parts)}")
    try:
        dag_id, run_id, task_id, index = (unquote(p, errors="strict") for p in parts)
    except UnicodeDecodeError:
        _bad_ref("not UTF-8 once decoded")
    for name, value in (("dag id", dag_id), ("task id", task_id)):
        if not _KEY.fullmatch(value) or len(value) > MAX_KEY or value in _NOT_IDS:
            _bad_ref(f"bad {name}")
    if not 0 < len(run_id) <= MAX_KEY or not run_id.isprintable() or run_id in _NOT_IDS:
        _bad_ref("bad run id")  # run ids are freer: a `/` in one is percent-encoded
    if not _MAP_INDEX.fullmatch(index):
        _bad_ref("bad map index")
    if make_ref(dag_id, run_id, task_id, int(index)) != ref:  # one spelling per request
        _bad_ref("not in canonical form")
    return dag_id, run_id, task_id, int(index)


def _bad_ref(why: str) -> NoReturn:
    raise Rejected(f"not an Airflow approval ref ({why}); expected "
                   "dag_id/dag_run_id/task_id/map_index, each percent-encoded")


# --- calls ------------------------------------------------------------------------------------


def pending(s: AirflowSession) -> list[ForeignApproval]:
    """Requests whose task still waits for an answer, oldest first."""
    api, found = af.TaskInstanceApi(s.api), list[ForeignApproval]()
    while len(found) < MAX_PENDING:
        page = s.call(api.get_hitl_details, dag_id=ALL, dag_run_id=ALL, limit=PAGE,
                      offset=len(found), order_by=["created_at"], response_received=False,
                      state=WAITING_STATES)
        details = list(page.hitl_details)
        found += [to_approval(d) for d in details]
        if len(details) < PAGE:
            break
    return found


def get(s: AirflowSession, ref: str) -> ForeignApproval | None:
    """The request ``ref`` names, answered or not; None when Airflow has none there."""
    dag_id, run_id, task_id, map_index = parse_ref(ref)
    api = af.TaskInstanceApi(s.api)
    try:
        return to_approval(s.call(api.get_hitl_detail, dag_id, run_id, task_id, map_index))
    except RemoteNotFound:
        return None


def answer(s: AirflowSession, ref: str, *, chosen: Sequence[str],
           params_input: dict[str, Any]) -> ForeignApproval:
    """Answer ``ref`` as the system's user. The request is read first so that nothing can
    fail once the answer is written; whether it was answered already is Airflow's to say
    (409), also when two answers race."""
    chosen = _checked(chosen, params_input)
    before = get(s, ref)
    if before is None:
        raise Rejected(f"{s.system.name}: no approval request {ref!r}")
    if not before.responded:  # answered: Airflow's 409 says so
        _settle(s, before)
    dag_id, run_id, task_id, map_index = parse_ref(ref)
    payload = af.UpdateHITLDetailPayload(chosen_options=chosen, params_input=params_input)
    done = s.call(_refusals(af.TaskInstanceApi(s.api).update_hitl_detail, s, ref),
                  dag_id, run_id, task_id, map_index, payload)
    return replace(before, responded=True, chosen=tuple(done.chosen_options),
                   params_input=dict(done.params_input or {}),
                   responded_by=done.responded_by.id, responded_at=done.responded_at)


def _settle(s: AirflowSession, request: ForeignApproval) -> None:
    """Transient while ``request`` is younger than SETTLE_SECONDS (by Airflow's clock against
    ours: a skew shortens or lengthens the wait)."""
    age = (clock.now() - request.created_at).total_seconds()
    if age < SETTLE_SECONDS:
        raise Transient(f"{s.system.name}: {request.ref!r} is {max(age, 0):.1f}s old; Airflow "
                        f"fails a task answered before its scheduler saw it wait: retry in "
                        f"{SETTLE_SECONDS - age:.1f}s")


def _checked(chosen: Sequence[str], params_input: dict[str, Any]) -> list[str]:
    """What the API client's payload model would refuse with its own exception; which
    options are allowed is Airflow's to say (400)."""
    if isinstance(chosen, str) or not chosen or not all(isinstance(c, str) for c in chosen):
        raise Rejected("choose at least one option (a list of option names)")
    if not isinstance(params_input, dict):
        raise Rejected("params_input must be an object")
    return list(chosen)


def _refusals(fn: Any, s: AirflowSession, ref: str) -> Any:
    """``fn`` with the answers that are not errors of the session: 409 (answered meanwhile)
    is `Conflict`; 403 for a user not assigned is a plain refusal, no new token needed."""
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except af.ApiException as exc:
            if exc.status == HTTPStatus.CONFLICT:
                raise Conflict(f"{s.system.name}: {ref!r} was already answered") from exc
            if exc.status == HTTPStatus.FORBIDDEN and NOT_ASSIGNED in str(exc.body or ""):
                raise Rejected(f"{s.system.name}: Airflow user {_user(s)} is not among the "
                               f"assigned users of {ref!r}") from exc
            raise
    return call


def _user(s: AirflowSession) -> str:
    return repr(s.system.auth.username) if s.system.auth else "(no auth configured)"


# --- mapping ----------------------------------------------------------------------------------


def to_approval(d: af.HITLDetail) -> ForeignApproval:
    ti = d.task_instance
    by = d.responded_by_user
    return ForeignApproval(
        ref=make_ref(ti.dag_id, ti.dag_run_id, ti.task_id, ti.map_index),
        job_id=ti.dag_id, external_id=ti.dag_run_id, task=ti.task_id,
        subject=d.subject, body=d.body, options=tuple(d.options), created_at=d.created_at,
        multiple=bool(d.multiple), defaults=tuple(d.defaults or ()), params=dict(d.params or {}),
        # Airflow authorizes on user ids (the user name for its simple auth manager).
        assigned=tuple(u.id for u in d.assigned_users or ()),
        responded=bool(d.response_received), chosen=tuple(d.chosen_options or ()),
        params_input=dict(d.params_input or {}), responded_by=by.id if by else None,
        responded_at=d.responded_at)
