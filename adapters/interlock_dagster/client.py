"""GraphQL calls to one Dagster system, with the contract's error classes.

Raw GraphQL over httpx rather than `dagster_graphql.DagsterGraphQLClient`: the client
has no batched run lookup, no lookup by tag (Interlock's idempotency, see adapter.py), no
re-execution and no runless asset reports, and it would bring all of Dagster into the
control plane's environment. The queries are those the client sends, checked on 1.13.27.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx

from interlock.adapters import Rejected, SessionPool, System, Transient

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class GraphQLSession:
    def __init__(self, system: System):
        self.system = system
        # Requests sent, by GraphQL operation name (or REST path): the poll-load figure.
        self.calls: Counter[str] = Counter()
        self._http = httpx.Client(base_url=system.base_url, trust_env=False,
                                  timeout=httpx.Timeout(system.timeout, connect=5.0))

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of the answer; Transient when Dagster is unreachable or 5xx."""
        self.calls[_operation(text)] += 1
        try:
            resp = self._http.post("/graphql", json={"query": text, "variables": variables or {}},
                                   headers=self.system.header_values())
        except httpx.HTTPError as exc:
            raise Transient(f"{self.system.name} at {self.system.base_url} is unreachable: "
                            f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code in RETRYABLE:
            raise Transient(f"{self.system.name} answered {resp.status_code}")
        if resp.status_code >= 400:
            raise Rejected(f"{self.system.name} answered {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        if body.get("errors"):
            messages = "; ".join(e.get("message", "") for e in body["errors"])
            raise Rejected(f"{self.system.name} refused the query: {messages[:500]}")
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self._http.close()

    def post_rest(self, path: str, payload: dict[str, Any]) -> None:
        self.calls[path.split("/")[1]] += 1
        try:
            resp = self._http.post(path, json=payload, headers=self.system.header_values())
        except httpx.HTTPError as exc:
            raise Transient(f"{self.system.name} is unreachable: {exc}") from exc
        if resp.status_code in RETRYABLE:
            raise Transient(f"{self.system.name} answered {resp.status_code}")
        if resp.status_code >= 400:
            raise Rejected(f"{self.system.name} answered {resp.status_code}: {resp.text[:300]}")


def _operation(text: str) -> str:
    match = re.search(r"\b(?:query|mutation)\s+(\w+)", text)
    return match.group(1) if match else "anonymous"


SESSIONS = SessionPool(GraphQLSession)
