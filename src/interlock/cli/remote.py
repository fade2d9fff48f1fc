"""The CLI through an Interlock API (`INTERLOCK_API_URL` + `INTERLOCK_TOKEN`): the same
calls as `LocalBackend`, made over HTTP with `Authorization: Bearer`, the answers parsed
into the same public views, and the API's refusals turned into the errors a local call
raises (so exit codes match: 400/413/415/422 are bad input, 2; the rest, 1).

The token is only ever in the request header: no message, error or repr holds it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from interlock.access.permissions import Role
from interlock.access.tokens import TokenInfo
from interlock.audit.query import AuditFilter, AuditVerdict
from interlock.errors import Conflict, InterlockError, NotFound, Problem, SpecError
from interlock.operations.agents import AgentTrail
from interlock.store.approvals import RequestFilter
from interlock.store.runs import RunFilter
from interlock.store.views import FlowRevisionPublic, LogPublic, RunDetail, RunPage
from interlock.trace.model import RunTrace

API_PREFIX = "/api/v1"
BAD_INPUT = frozenset({400, 413, 415, 422})
MAX_DETAIL = 500  # characters of an error's detail worth printing
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
M = TypeVar("M", bound=BaseModel)
_TOKEN_INFO = TypeAdapter(TokenInfo)
_TOKEN_INFOS = TypeAdapter(list[TokenInfo])


class RemoteError(InterlockError):
    """The API could not be reached, failed, or answered something unreadable."""


class Refused(InterlockError):
    """The API refused the credentials (401) or the permission (403); the message is the
    API's own sentence."""


class RemoteBackend:
    embedded = False  # the server's dispatcher runs the work, whether or not we wait
    poll_s = 0.25

    def __init__(self, api_url: str, token: str):
        self.where = _without_userinfo(api_url.rstrip("/"))
        self._http = httpx.Client(base_url=api_url.rstrip("/") + API_PREFIX, timeout=TIMEOUT,
                                  headers={"Authorization": f"Bearer {token}"},
                                  follow_redirects=False)

    def __repr__(self) -> str:
        return f"RemoteBackend({self.where!r})"

    # --- flows and runs ---------------------------------------------------------------

    def register(self, source: str, *, file: str) -> tuple[str, str]:
        revision = self._model(FlowRevisionPublic, "POST", "/flows",
                               json={"source": source, "file": file})
        return revision.namespace, revision.id

    def start_run(self, *, namespace: str, flow_id: str, inputs: dict[str, str]) -> str:
        return self._model(RunDetail, "POST", "/runs", json={
            "namespace": namespace, "flow_id": flow_id, "inputs": inputs,
            "inputs_are_strings": True}).id

    def get_run(self, run_id: str) -> RunDetail:
        return self._model(RunDetail, "GET", f"/runs/{_seg(run_id)}")

    def list_runs(self, filters: RunFilter, *, limit: int) -> RunPage:
        params = {"state": filters.state.value if filters.state else None,
                  "namespace": filters.namespace, "flow_id": filters.flow_id, "limit": limit}
        return self._model(RunPage, "GET", "/runs", params=_present(params))

    def node_logs(self, run_id: str, node_id: str, *, attempt: int | None) -> LogPublic:
        return self._model(LogPublic, "GET", f"/runs/{_seg(run_id)}/nodes/{_seg(node_id)}/logs",
                           params=_present({"attempt": attempt}))

    def cancel_run(self, run_id: str) -> None:
        self._call("POST", f"/runs/{_seg(run_id)}/cancel")

    def retry_run(self, run_id: str) -> list[str]:
        body = self._json(self._call("POST", f"/runs/{_seg(run_id)}/retry"))
        nodes = body.get("nodes") if isinstance(body, dict) else None
        if not isinstance(nodes, list):
            raise RemoteError(f"the API at {self.where} answered a retry without its nodes")
        return [str(n) for n in nodes]

    def run_trace(self, run_id: str) -> RunTrace:
        return self._model(RunTrace, "GET", f"/runs/{_seg(run_id)}/trace")

    def agent_trail(self, run_id: str, node_id: str) -> AgentTrail:
        return self._model(AgentTrail, "GET",
                           f"/runs/{_seg(run_id)}/nodes/{_seg(node_id)}/agent")

    # --- audit --------------------------------------------------------------------------

    def audit_verify(self) -> AuditVerdict:
        return self._model(AuditVerdict, "GET", "/audit/verify")

    def audit_export(self, filters: AuditFilter) -> Iterator[str]:
        params = _present({"actor": filters.actor, "action": filters.action,
                           "target": filters.target, "since": _iso(filters.since),
                           "until": _iso(filters.until)})
        try:
            with self._http.stream("GET", "/audit/export", params=params) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                yield from response.iter_text()
        except httpx.HTTPError as exc:  # a broken stream must never look like a whole export
            raise self._unreachable(exc) from None

    # --- tokens -------------------------------------------------------------------------

    def create_token(self, *, name: str, role: Role, namespace: str,
                     expires_in: timedelta | None, service: bool,
                     groups: Sequence[str] = ()) -> tuple[str, TokenInfo]:
        body = self._json(self._call("POST", "/tokens", json={
            "name": name, "role": role.value, "namespace": namespace, "service": service,
            "groups": list(groups),
            "expires_in_s": expires_in.total_seconds() if expires_in else None}))
        token = body.pop("token", None) if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise RemoteError(f"the API at {self.where} answered no token")
        return token, self._adapt(_TOKEN_INFO, body, "a token")

    def list_tokens(self) -> list[TokenInfo]:
        return self._adapt(_TOKEN_INFOS, self._json(self._call("GET", "/tokens")), "tokens")

    def revoke_token(self, name: str) -> TokenInfo:
        body = self._json(self._call("POST", f"/tokens/{_seg(name)}/revoke"))
        return self._adapt(_TOKEN_INFO, body, "a token")

    # --- approvals ----------------------------------------------------------------------

    def list_approvals(self, filters: RequestFilter, *, mine: bool,
                       limit: int) -> list[dict[str, Any]]:
        state = filters.states[0].value if len(filters.states) == 1 else None
        params = _present({"state": state, "namespace": filters.namespace,
                           "flow": filters.flow, "run_id": filters.run_id,
                           "origin": filters.origin.value if filters.origin else None,
                           "mine": mine or None, "limit": limit})
        found = self._json(self._call("GET", "/approvals", params=params))
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise RemoteError(f"the API at {self.where} answered something that is not a "
                              "list of approval requests")
        return found

    def get_approval(self, request_id: str) -> dict[str, Any]:
        return self._object(self._call("GET", f"/approvals/{_seg(request_id)}"),
                            "an approval request")

    def vote(self, request_id: str, *, option: str, inputs: dict[str, str],
             comment: str) -> dict[str, Any]:
        response = self._call("POST", f"/approvals/{_seg(request_id)}/votes", json={
            "option": option, "inputs": inputs, "comment": comment,
            "inputs_are_strings": True})
        return self._object(response, "a vote's outcome")

    def close(self) -> None:
        self._http.close()

    # --- HTTP ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        _raise_for(response)
        return response

    def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = self._call(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise RemoteError(f"the API at {self.where} answered {method} {path} with "
                              f"something that is not a {model.__name__}") from None

    def _adapt(self, adapter: TypeAdapter[Any], body: object, what: str) -> Any:
        try:
            return adapter.validate_python(body)
        except ValidationError:
            raise RemoteError(f"the API at {self.where} answered something that is not "
                              f"{what}") from None

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"the API at {self.where} did not answer JSON") from None

    def _object(self, response: httpx.Response, what: str) -> dict[str, Any]:
        body = self._json(response)
        if not isinstance(body, dict):
            raise RemoteError(f"the API at {self.where} answered something that is not {what}")
        return body

    def _unreachable(self, exc: httpx.HTTPError) -> RemoteError:
        return RemoteError(f"cannot use the API at {self.where}: {type(exc).__name__}: "
                           f"{str(exc)[:200]}; check INTERLOCK_API_URL and that "
                           "`interlock serve` runs there")


def _raise_for(response: httpx.Response) -> None:
    """The error a local call would have raised for this refusal."""
    if response.is_success:
        return
    detail, problems = _detail(response)
    status = response.status_code
    if status == 422 and problems is not None:
        raise SpecError(problems)
    if status in BAD_INPUT:
        raise ValueError(detail)
    if status == 404:
        raise NotFound(detail)
    if status == 409:
        raise Conflict(detail)
    if status in (401, 403):
        raise Refused(detail)
    raise RemoteError(f"the API answered {status}: {detail}")


def _detail(response: httpx.Response) -> tuple[str, list[Problem] | None]:
    """The error's sentence, and a flow's located problems when it has them."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:MAX_DETAIL] or response.reason_phrase), None
    if not isinstance(body, dict):
        return str(body)[:MAX_DETAIL], None
    detail = str(body.get("detail") or response.reason_phrase)[:MAX_DETAIL]
    return detail, _problems(body.get("problems"))


def _problems(raw: object) -> list[Problem] | None:
    fields = {"file", "line", "col", "message"}
    if not isinstance(raw, list) or not raw or \
            not all(isinstance(p, dict) and fields <= p.keys() for p in raw):
        return None
    try:
        return [Problem(file=str(p["file"]), line=int(p["line"]), col=int(p["col"]),
                        message=str(p["message"])) for p in raw]
    except (TypeError, ValueError):
        return None


def _seg(value: str) -> str:
    """One path segment, whatever the user typed (`/`, `..` and `?` stay inside it)."""
    return quote(value, safe="")


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _iso(at: datetime | None) -> str | None:
    """A time for the API, which wants a zone: a bare one is taken as UTC."""
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
