"""One Airflow system seen through the official client: auth, timeouts, error classes.

Every call goes through `AirflowSession.call`, which turns what went wrong into the
adapter contract's two kinds: `Transient` (Airflow down, 5xx, 429, a timeout) and
`Rejected` (a 4xx that will not change). A 401 or 403 fetches a fresh token once, then retries.
A 404 is `RemoteNotFound`, a `Rejected` the adapter can catch to say what was missing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import urllib3
from airflow_client import client as af

from interlock.adapters import Rejected, SessionPool, System, Transient

T = TypeVar("T")
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
# A token signed with a key the server no longer has gets 403 "Invalid JWT token", not 401:
# both get one fresh token before they count as a refusal.
AUTH_FAILURES = frozenset({401, 403})


class RemoteNotFound(Rejected):
    pass


class AirflowSession:
    """The API client of one system, shared by threads; the token is refreshed on 401."""

    def __init__(self, system: System):
        self.system = system
        config = af.Configuration(host=system.base_url)
        config.retries = 0  # retrying is the executor's job, with backoff and a key
        self._config = config
        self._api = af.ApiClient(config)
        self._lock = threading.Lock()
        self._token_ok = system.auth is None

    def close(self) -> None:
        # ApiClient has no close(); its connections live in the REST client's pool.
        self._api.rest_client.pool_manager.clear()

    @property
    def api(self) -> af.ApiClient:
        return self._api

    @property
    def timeout(self) -> tuple[float, float]:
        return (min(self.system.timeout, 5.0), self.system.timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", self.timeout)
        self._ensure_token()
        try:
            return self._classified(fn, *args, **kwargs)
        except _Unauthorized:
            self._refresh_token()
            try:
                return self._classified(fn, *args, **kwargs)
            except _Unauthorized as exc:
                raise Rejected(f"{self.system.name}: Airflow refused the request with a "
                               f"fresh token ({exc}); check the user's role") from None

    def _classified(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except af.ApiException as exc:
            raise self._classify(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Transient(f"{self.system.name} at {self.system.base_url} is unreachable: "
                            f"{type(exc).__name__}: {exc}") from exc

    def _classify(self, exc: af.ApiException) -> Exception:
        status = int(exc.status or 0)
        detail = _detail(exc.body) or exc.reason or ""
        if status in AUTH_FAILURES:
            return _Unauthorized(f"{status}: {detail}")
        if status in RETRYABLE:
            return Transient(f"{self.system.name} answered {status}: {detail}")
        if status == 404:
            return RemoteNotFound(f"{self.system.name}: {detail}")
        return Rejected(f"{self.system.name} answered {status}: {detail}")

    def _ensure_token(self) -> None:
        if not self._token_ok:
            self._refresh_token()

    def _refresh_token(self) -> None:
        auth = self.system.auth
        if auth is None:
            raise Rejected(f"{self.system.name}: Airflow asks for credentials but the systems "
                           "file gives none; add `auth: {username, password: {env: ...}}`")
        with self._lock:
            password = auth.password.resolve(system=self.system.name)
            try:
                resp = httpx.post(f"{self.system.base_url}/auth/token", timeout=self.timeout[1],
                                  json={"username": auth.username, "password": password})
            except httpx.HTTPError as exc:
                raise Transient(f"{self.system.name}: cannot get a token: {exc}") from exc
            if resp.status_code >= 500:
                raise Transient(f"{self.system.name}: /auth/token answered {resp.status_code}")
            if resp.status_code not in (200, 201):
                raise Rejected(f"{self.system.name}: /auth/token refused user "
                               f"{auth.username!r} ({resp.status_code}); check the password "
                               "the systems file points at")
            self._config.access_token = resp.json()["access_token"]
            self._token_ok = True


class _Unauthorized(Exception):
    pass


def _detail(body: Any) -> str:
    """Airflow's error bodies are `{"detail": ...}`; keep them short for people."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    return str(detail)[:300]


SESSIONS = SessionPool(AirflowSession)
