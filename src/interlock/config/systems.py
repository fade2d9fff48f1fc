"""Registered systems: the foreign schedulers nodes may point at (DESIGN.md section 1).

An admin declares them in the systems file (``INTERLOCK_SYSTEMS``, default
``systems.yaml`` in the working directory). Secrets are never written in it: they are
references to an environment variable or a file, resolved when used.

    # systems.yaml
    systems:
      airflow/prod:
        url: https://airflow.example.com
        auth: {username: interlock, password: {env: AIRFLOW_PROD_PASSWORD}}
        events_secret: {env: AIRFLOW_PROD_EVENTS_SECRET}   # HMAC key of pushed events
      dagster/analytics:
        url: http://dagster.internal:3000
        headers: {Authorization: {env: DAGSTER_TOKEN}}

A system's name is ``<kind>/<name>``; the kind is the adapter (`uses:`) that talks to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from interlock.config import env, files
from interlock.config.secret_refs import SecretError as SecretError
from interlock.config.secret_refs import SecretRef
from interlock.config.yamlpos import load_located
from interlock.errors import InterlockError, Problem, SpecError

SYSTEM_NAME = r"^[a-z][a-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"
OS_USER = r"^[A-Za-z_][A-Za-z0-9._-]{0,31}\$?$"  # a `run_as` user name, as useradd takes it
RUN_AS_NAMESPACE = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$"  # a flow namespace
RUN_AS_KEY = "run_as"  # top level: namespace -> OS user of its script and robot nodes
# Header names whose value is a credential: written only as a secret reference.
LLM_KIND = "llm"  # systems that answer chat completions (`uses: agent` talks to them)
MCP_KIND = "mcp"  # MCP servers whose tools agents may call (`docs/agents.md`, "MCP tools")
SECRET_HEADER_WORDS = ("auth", "token", "secret", "key", "password", "cookie", "session",
                       "signature", "credential")


class UnknownSystem(InterlockError):
    pass


class PasswordAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: SecretRef


class ForeignApprovals(BaseModel):
    """How Interlock's inbox treats a system's own approval requests (Airflow's HITL): the
    namespace whose permissions apply and the quorum rules (`interlock.spec.approvals`
    `QuorumRule`s, checked when the inbox reads them) met before Interlock answers."""

    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(default="default", max_length=200,
                           pattern=r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$")
    rules: list[dict[str, Any]] = Field(default_factory=lambda: [{"role": "approver"}],
                                        min_length=1, max_length=10)
    reject_options: list[str] = Field(default_factory=lambda: ["Reject"], max_length=20)


class LlmPrice(BaseModel):
    """What a model's tokens cost, per 1000 (any currency: `budget.cost` is in the same)."""

    model_config = ConfigDict(extra="forbid")
    input_per_1k: float = Field(default=0.0, ge=0, le=1000)
    output_per_1k: float = Field(default=0.0, ge=0, le=1000)


class LlmSettings(BaseModel):
    """An `llm/<name>` system: an OpenAI-compatible chat-completions server at its `url`
    (the base URL, e.g. http://127.0.0.1:8081/v1; `docs/agents.md`)."""

    model_config = ConfigDict(extra="forbid")
    api_key: SecretRef | None = None   # sent as `Authorization: Bearer`; None: no key
    models: list[str] = Field(default_factory=list, max_length=100)  # [] allows any model
    price: LlmPrice | None = None
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    max_response_bytes: int = Field(default=1_000_000, ge=1024, le=16_000_000)


class McpSettings(BaseModel):
    """An `mcp/<name>` system, written here by the admin, never in a flow: either a server
    started over stdio for each tool call (its argv and its whole environment), or one
    reached over streamable HTTP at the system's `url` (its `headers`, secrets by reference,
    are all it is sent)."""

    model_config = ConfigDict(extra="forbid")
    command: list[str] | None = Field(default=None, min_length=1, max_length=64)  # argv, no shell
    env: dict[str, SecretRef | str] = Field(default_factory=dict, max_length=64)  # all it gets
    cwd: Path | None = None
    trusted: bool = False          # only then are its readOnlyHint annotations believed
    read_only: list[str] = Field(default_factory=list, max_length=64)  # admin-vouched tools
    max_output_bytes: int = Field(default=1_000_000, ge=1024, le=16_000_000)

    @field_validator("env")
    @classmethod
    def _no_literal_credentials(cls, env: dict[str, SecretRef | str]) -> dict[str, Any]:
        for name, value in env.items():
            if isinstance(value, str) and any(w in name.lower() for w in SECRET_HEADER_WORDS):
                raise ValueError(f"`{name}` carries a credential: write it as a reference, "
                                 "`{env: NAME}` or `{file: PATH}`; never the secret itself")
        return env

    def check_transport(self, *, url: str, headers: bool) -> None:
        """Exactly one transport: stdio (`command`, `env`, `cwd`) or HTTP (`url`, `headers`)."""
        if (self.command is None) == (not url):
            raise ValueError("an `mcp/<name>` system has either `mcp: {command: [...]}` (a "
                             "stdio server) or `url: http(s)://...` (streamable HTTP), not "
                             f"{'both' if url else 'neither'}")
        if url and (self.env or self.cwd is not None):
            raise ValueError("`mcp.env` and `mcp.cwd` are for a stdio server; an HTTP "
                             "server is sent `headers:` only")
        if headers and not url:
            raise ValueError("`headers:` of an `mcp/<name>` system are for an HTTP server; "
                             "a stdio server gets `mcp.env`")


class System(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SYSTEM_NAME)
    url: str = Field(default="", pattern=r"^(https?://.*)?$")  # hosts that push have none
    ui_url: str | None = None           # where deep links point, when not `url`
    auth: PasswordAuth | None = None    # None: no auth (a local all-admins instance)
    headers: dict[str, SecretRef | str] = Field(default_factory=dict)
    events_secret: SecretRef | None = None
    timeout: float = Field(default=10.0, gt=0, description="seconds per request")
    options: dict[str, Any] = Field(default_factory=dict)  # adapter-specific settings
    run_as: str | None = Field(default=None, pattern=OS_USER)  # OS user of script/robot nodes
    approvals: ForeignApprovals | None = None  # its human-in-the-loop requests in our inbox
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)  # what policies see
    concurrency: int | None = Field(default=None, ge=1, le=100_000, description=(
        "at most this many attempts in flight on the system, whatever flow started them; "
        "the others wait in `slot_wait`, oldest first"))
    llm: LlmSettings | None = None     # `llm/<name>` systems only (`docs/agents.md`)
    mcp: McpSettings | None = None     # `mcp/<name>` systems only (`docs/agents.md`)

    @property
    def llm_settings(self) -> LlmSettings:
        return self.llm or LlmSettings()

    @field_validator("events_secret")
    @classmethod
    def _strong_events_secret(cls, secret: SecretRef | None) -> SecretRef | None:
        if secret is not None:
            secret.check_strength("events_secret")
        return secret

    @model_validator(mode="after")
    def _url_unless_host(self) -> System:
        if self.llm is not None and self.kind != LLM_KIND:
            raise ValueError("`llm:` belongs to `llm/<name>` systems only")
        if (self.mcp is not None) != (self.kind == MCP_KIND):
            raise ValueError("an `mcp/<name>` system has `mcp: {command: [...]}` (a stdio "
                             "server) or `url:` and `mcp: {}` (streamable HTTP), and only "
                             "it has")
        if self.mcp is not None:
            self.mcp.check_transport(url=self.url, headers=bool(self.headers))
        if not self.url and _needs_url(self.kind) and self.kind != MCP_KIND:
            raise ValueError(f"`url` is required for a {self.kind} system, e.g. "
                             "http://airflow.internal:8080")
        return self

    @property
    def kind(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def ui(self) -> str:
        return (self.ui_url or self.url).rstrip("/")

    def header_values(self) -> dict[str, str]:
        return {k: v if isinstance(v, str) else v.resolve(system=self.name)
                for k, v in self.headers.items()}


class Systems:
    """The registered systems, by name."""

    def __init__(self, systems: dict[str, System], source: str = "<systems>",
                 run_as: dict[str, str] | None = None):
        self._systems, self.source = systems, source
        self._run_as = dict(run_as or {})

    def namespace_run_as(self, namespace: str) -> tuple[str, str] | None:
        """(key, user) of the top-level `run_as:` entry for ``namespace``: itself, else its
        nearest dotted parent (`finance` covers `finance.eu`); None if none covers it."""
        parts = namespace.split(".")
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in self._run_as:
                return key, self._run_as[key]
        return None

    def get(self, name: str, *, kind: str | None = None) -> System:
        system = self._systems.get(name)
        if system is None:
            known = ", ".join(sorted(self._systems)) or "none"
            raise UnknownSystem(f"unknown system {name!r}: it is not registered in "
                                f"{self.source} (registered: {known})")
        if kind is not None and system.kind != kind:
            raise UnknownSystem(f"system {name!r} is a {system.kind} system, not {kind}")
        return system

    def names(self) -> list[str]:
        return sorted(self._systems)

    def of_kind(self, kind: str) -> list[System]:
        return [s for s in self._systems.values() if s.kind == kind]

    def __contains__(self, name: object) -> bool:
        return name in self._systems

    def secret_env_names(self) -> frozenset[str]:
        """Every environment variable this file names as a secret (`{env: NAME}`): no node
        may copy one into a script's environment (`inherit_env`)."""
        refs: list[SecretRef] = []
        for system in self._systems.values():
            refs += [system.auth.password] if system.auth else []
            refs += [system.events_secret] if system.events_secret else []
            refs += [v for v in system.headers.values() if isinstance(v, SecretRef)]
            refs += [system.llm.api_key] if system.llm and system.llm.api_key else []
            refs += [v for v in (system.mcp.env.values() if system.mcp else ())
                     if isinstance(v, SecretRef)]
        return frozenset(r.env for r in refs if r.env)

    def __len__(self) -> int:
        return len(self._systems)


def parse_systems(text: str, source: str) -> Systems:
    """The systems in ``text``; SpecError with every located problem otherwise."""
    doc = load_located(text, source)
    problems = list(doc.problems)
    raw = doc.value.get("systems") if isinstance(doc.value, dict) else None
    if not problems and not isinstance(raw, dict):
        problems.append(doc.at((), "a systems file is a mapping with a `systems:` mapping "
                                   "of name -> {url, auth, ...}"))
    systems: dict[str, System] = {}
    for name, body in (raw.items() if isinstance(raw, dict) else ()):
        problems += _literal_credentials(doc, str(name), body)
        try:
            systems[str(name)] = System.model_validate({**(body or {}), "name": name})
        except (ValidationError, TypeError) as exc:
            problems += _problems(doc, str(name), exc)
    run_as, more = _run_as_map(doc)
    problems += more
    if problems:
        raise SpecError(problems)
    return Systems(systems, source, run_as)


def _run_as_map(doc: Any) -> tuple[dict[str, str], list[Problem]]:
    """The top-level `run_as:` mapping, namespace -> OS user; each bad entry located."""
    raw = doc.value.get(RUN_AS_KEY) if isinstance(doc.value, dict) else None
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [doc.at((RUN_AS_KEY,), "`run_as` is a mapping of namespace -> OS user, "
                                          "e.g. `finance: payroll`")]
    found: dict[str, str] = {}
    problems: list[Problem] = []
    for namespace, user in raw.items():
        if not re.fullmatch(RUN_AS_NAMESPACE, str(namespace)):
            problems.append(doc.at((RUN_AS_KEY, namespace), f"run_as: {str(namespace)!r} is "
                                   "not a namespace (dotted names of letters, digits, _ and -)"))
        elif not isinstance(user, str) or not re.fullmatch(OS_USER, user):
            problems.append(doc.at((RUN_AS_KEY, namespace), f"run_as of namespace {namespace}: "
                                   f"{user!r} is not an OS user name"))
        else:
            found[str(namespace)] = user
    return found, problems


def _literal_credentials(doc: Any, name: str, body: Any) -> list[Problem]:
    """A header whose name says it carries a credential must be a secret reference."""
    headers = body.get("headers") if isinstance(body, dict) else None
    return [doc.at(("systems", name, "headers", header),
                   f"system {name}: header `{header}` carries a credential: write it as a "
                   "reference, `{env: NAME}` or `{file: PATH}`; never the secret itself")
            for header, value in (headers.items() if isinstance(headers, dict) else ())
            if isinstance(value, str)
            and any(w in str(header).lower() for w in SECRET_HEADER_WORDS)]


def _problems(doc: Any, name: str, exc: Exception) -> list[Problem]:
    if not isinstance(exc, ValidationError):
        return [doc.at(("systems", name), f"system {name}: expected a mapping")]
    return [doc.at(("systems", name, *err["loc"]) if err["loc"] != ("name",)
                   else ("systems", name),
                   f"system {name}: `{'.'.join(map(str, err['loc']))}`: "
                   f"{err['msg'].removeprefix('Value error, ')}"
                   + ("; names are <kind>/<name>, e.g. airflow/prod"
                      if err["loc"] == ("name",) else ""))
            for err in exc.errors()]


def systems_path() -> Path:
    return env.systems_file()


def _every_kind_needs_url(kind: str) -> bool:
    return True


# Whether a kind's systems need a `url` (servers Interlock calls) or not (hosts that only
# push to it, as cron's do). The adapters know (`Adapter.system_has_url`); config sits
# below them, so the adapter registry installs its answer with `set_url_rule` when it is
# imported. Until then every kind needs a `url`.
_needs_url: Callable[[str], bool] = _every_kind_needs_url


def set_url_rule(needs_url: Callable[[str], bool]) -> None:
    """Install which kinds need a `url`; files read before are read again."""
    global _needs_url
    _needs_url = needs_url
    files.clear()


def load_systems(path: Path | None = None) -> Systems:
    """The systems file, re-read when it changes; no file means no registered systems."""
    path = (path or systems_path()).resolve()
    try:
        return files.cached_file(path, _read_systems)
    except FileNotFoundError:
        return Systems({}, str(path))


def _read_systems(path: Path) -> Systems:
    return parse_systems(path.read_text(encoding="utf-8"), str(path))
