"""Where the CLI's commands act, chosen once per command: the store itself through
`interlock.operations` (`LocalBackend`), or an Interlock API with a token
(`interlock.cli.remote.RemoteBackend`, when `INTERLOCK_TOKEN` is set). Both answer with the
same public views, so each command prints the same thing and exits with the same code
either way.

    with open_backend() as backend:
        detail = backend.get_run(run_id)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from interlock.access.permissions import Role
from interlock.access.principals import PrincipalKind
from interlock.access.tokens import TokenError, TokenInfo
from interlock.approvals.votes import VoteRefused
from interlock.audit import query as audit_query
from interlock.audit.query import AuditFilter, AuditVerdict
from interlock.cli.common import CLI_ACTOR
from interlock.config.env import settings
from interlock.operations import access as access_ops
from interlock.operations import agents as agent_ops
from interlock.operations import approvals as approval_ops
from interlock.operations import runs as ops
from interlock.operations.agents import AgentTrail
from interlock.operations.runtime import make_dispatcher
from interlock.store import audit
from interlock.store.approvals import RequestFilter
from interlock.store.outbox import Dispatcher
from interlock.store.runs import RunFilter
from interlock.store.views import LogPublic, RunDetail, RunPage
from interlock.trace.model import RunTrace


class Backend(Protocol):
    """What the commands need; each method answers a public view or raises Interlock's
    errors (NotFound, Conflict, SpecError, InputError, ValueError for bad input)."""

    embedded: bool   # runs advance only while this process lives: commands wait for them
    poll_s: float    # how often a waiting command looks at its run

    def register(self, source: str, *, file: str) -> tuple[str, str]: ...

    def start_run(self, *, namespace: str, flow_id: str, inputs: dict[str, str]) -> str: ...

    def get_run(self, run_id: str) -> RunDetail: ...

    def list_runs(self, filters: RunFilter, *, limit: int) -> RunPage: ...

    def node_logs(self, run_id: str, node_id: str, *, attempt: int | None) -> LogPublic: ...

    def cancel_run(self, run_id: str) -> None: ...

    def retry_run(self, run_id: str) -> list[str]: ...

    def run_trace(self, run_id: str) -> RunTrace: ...

    def agent_trail(self, run_id: str, node_id: str) -> AgentTrail: ...

    def audit_verify(self) -> AuditVerdict: ...

    def audit_export(self, filters: AuditFilter) -> Iterator[str]: ...

    def create_token(self, *, name: str, role: Role, namespace: str,
                     expires_in: timedelta | None, service: bool,
                     groups: Sequence[str] = ()) -> tuple[str, TokenInfo]: ...

    def list_tokens(self) -> list[TokenInfo]: ...

    # Approvals answer the API's JSON (plain data, times as ISO strings) either way.
    def list_approvals(self, filters: RequestFilter, *, mine: bool,
                       limit: int) -> list[dict[str, Any]]: ...

    def get_approval(self, request_id: str) -> dict[str, Any]: ...

    def vote(self, request_id: str, *, option: str, inputs: dict[str, str],
             comment: str) -> dict[str, Any]: ...

    def revoke_token(self, name: str) -> TokenInfo: ...

    def close(self) -> None: ...


class LocalBackend:
    """The store on this machine: whoever can open it already holds everything in it."""

    poll_s = 0.1

    def __init__(self) -> None:
        self.embedded = settings().embedded
        self._dispatcher: Dispatcher | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        """Made when a command first starts work (reading a run needs none)."""
        if self._dispatcher is None:
            self._dispatcher = make_dispatcher()
        return self._dispatcher

    def register(self, source: str, *, file: str) -> tuple[str, str]:
        flow, _ = ops.register(source, file=file, actor=CLI_ACTOR)
        return flow.namespace, flow.id

    def start_run(self, *, namespace: str, flow_id: str, inputs: dict[str, str]) -> str:
        return ops.start_run(namespace=namespace, flow_id=flow_id, inputs=dict(inputs),
                             dispatcher=self.dispatcher, inputs_are_strings=True,
                             actor=CLI_ACTOR)

    def get_run(self, run_id: str) -> RunDetail:
        return ops.get_run(run_id)

    def list_runs(self, filters: RunFilter, *, limit: int) -> RunPage:
        return ops.list_runs(filters=filters, limit=limit)

    def node_logs(self, run_id: str, node_id: str, *, attempt: int | None) -> LogPublic:
        return ops.node_logs(run_id, node_id, attempt=attempt)

    def cancel_run(self, run_id: str) -> None:
        ops.cancel_run(run_id, dispatcher=self.dispatcher, actor=CLI_ACTOR)

    def retry_run(self, run_id: str) -> list[str]:
        return ops.retry_run(run_id, dispatcher=self.dispatcher, actor=CLI_ACTOR)

    def run_trace(self, run_id: str) -> RunTrace:
        return ops.run_trace(run_id)

    def agent_trail(self, run_id: str, node_id: str) -> AgentTrail:
        return agent_ops.agent_trail(run_id, node_id)

    def audit_verify(self) -> AuditVerdict:
        return audit_query.verify()

    def audit_export(self, filters: AuditFilter) -> Iterator[str]:
        return audit_query.export_lines(filters)

    def create_token(self, *, name: str, role: Role, namespace: str,
                     expires_in: timedelta | None, service: bool,
                     groups: Sequence[str] = ()) -> tuple[str, TokenInfo]:
        kind = PrincipalKind.SERVICE if service else PrincipalKind.USER
        try:
            return access_ops.create_token(name=name, role=role, namespace=namespace,
                                           expires_in=expires_in, kind=kind,
                                           by=access_ops.local_principal(),
                                           origin=audit.LOCAL_ORIGIN, groups=groups)
        except TokenError as exc:  # a bad name: the caller's input
            raise ValueError(str(exc)) from None

    def list_tokens(self) -> list[TokenInfo]:
        return access_ops.list_tokens()

    def revoke_token(self, name: str) -> TokenInfo:
        return access_ops.revoke_token(name, by=access_ops.local_principal(),
                                       origin=audit.LOCAL_ORIGIN)

    def list_approvals(self, filters: RequestFilter, *, mine: bool,
                       limit: int) -> list[dict[str, Any]]:
        found = approval_ops.list_requests(
            filters=filters, limit=limit, mine=access_ops.local_principal() if mine else None)
        return to_jsonable_python(found)  # type: ignore[no-any-return]

    def get_approval(self, request_id: str) -> dict[str, Any]:
        return to_jsonable_python(  # type: ignore[no-any-return]
            approval_ops.get_request(request_id))

    def vote(self, request_id: str, *, option: str, inputs: dict[str, str],
             comment: str) -> dict[str, Any]:
        try:
            return approval_ops.vote(request_id, principal=access_ops.local_principal(),
                                     option=option, inputs=dict(inputs), comment=comment,
                                     dispatcher=self.dispatcher, origin=audit.LOCAL_ORIGIN,
                                     inputs_are_strings=True)
        except VoteRefused as exc:  # an unknown option: the caller's input, as the API says
            raise ValueError(str(exc)) from None

    def close(self) -> None:
        close = getattr(self._dispatcher, "close", None)
        if close is not None:
            close()


def remote_mode() -> bool:
    """Whether commands go through the API: a token is configured."""
    return settings().token is not None


@contextmanager
def open_backend() -> Iterator[Backend]:
    """The backend for this command (remote when INTERLOCK_TOKEN is set), closed after."""
    current = settings()
    if current.token is not None:
        from interlock.cli.remote import RemoteBackend
        chosen: Backend = RemoteBackend(current.api_url, current.token)
    else:
        chosen = LocalBackend()
    try:
        yield chosen
    finally:
        chosen.close()
