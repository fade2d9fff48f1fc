"""The notify file (`INTERLOCK_NOTIFY_FILE`): which webhooks hear of which events.

    webhooks:
      - name: compliance-desk
        url: https://hooks.example/approvals
        format: json                     # json | slack
        secret: {env: NOTIFY_SECRET}     # HMAC-SHA256 key; required for json
        events: [approval.requested, approval.decided]   # default: every event
        namespaces: ["finance.*"]        # default: every namespace
        max_tries: 8                     # default 8
      - name: ops-channel
        url: {env: SLACK_WEBHOOK_URL}    # a URL that is itself a credential: a reference
        format: slack

Secrets (and URLs written as references) are resolved when a notification is sent, never
stored. The file is parsed again when it changes; every problem is reported with its
`file:line:col`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from interlock.config import env, files
from interlock.config.systems import SecretRef
from interlock.config.yamlpos import load_located
from interlock.errors import Problem, SpecError
from interlock.spec.namespaces import check_pattern, matches
from interlock.store.tables.notifications import WEBHOOK_MAX

WEBHOOKS_KEY = "webhooks"
WEB_SCHEMES = ("http", "https")
DEFAULT_MAX_TRIES = 8   # with the backoff (5 s, 10 s, 20 s ...): about 10 minutes in all
MAX_MAX_TRIES = 50
MAX_WEBHOOKS = 100
TEXT_BRANCH = "str"  # `url` is a text or a reference: pydantic tags each branch's errors


class NotifyEvent(StrEnum):
    """What a notification tells about."""

    APPROVAL_REQUESTED = "approval.requested"  # people are asked to decide
    APPROVAL_REMINDER = "approval.reminder"    # still waiting: a reminder is due
    APPROVAL_ESCALATED = "approval.escalated"  # escalation rules may decide now
    APPROVAL_DECIDED = "approval.decided"      # decided (approved, rejected, timed out...)
    DEADLINE_LATE = "deadline.late"            # a run or node missed its `sla:` deadline
    DEADLINE_AT_RISK = "deadline.at_risk"      # ... is estimated to miss it (from history)


class WebhookFormat(StrEnum):
    JSON = "json"    # Interlock's generic JSON body, signed
    SLACK = "slack"  # a Slack-compatible `{text, blocks}` body (incoming webhooks)


class NotifyConfigError(SpecError):
    """The notify file is missing or wrong; its message says where and what to do."""


class WebhookSecret(SecretRef):
    """A `SecretRef` whose texts speak of the notify file."""

    SOURCE: ClassVar[str] = "the notify file"
    OWNER: ClassVar[str] = "webhook"


def check_web_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in WEB_SCHEMES or not parts.hostname:
        raise ValueError("a webhook URL is http:// or https:// with a host, e.g. "
                         "https://hooks.example/approvals (no file:, ftp:, relative URLs)")
    if parts.username or parts.password:
        raise ValueError("credentials in a webhook URL are refused; write the whole URL as "
                         "a reference, `url: {env: NAME}`")
    return url


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=WEBHOOK_MAX,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    url: str | WebhookSecret = Field(description="the receiver; a reference if it is a secret")
    format: WebhookFormat = WebhookFormat.JSON
    secret: WebhookSecret | None = None
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NotifyEvent), min_length=1)
    namespaces: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    max_tries: int = Field(default=DEFAULT_MAX_TRIES, ge=1, le=MAX_MAX_TRIES)
    timeout: float = Field(default=5.0, gt=0, le=30, description="seconds per request")

    @field_validator("url")
    @classmethod
    def _web_url(cls, url: str | WebhookSecret) -> str | WebhookSecret:
        return check_web_url(url) if isinstance(url, str) else url

    @field_validator("namespaces")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        return [check_pattern(p) for p in patterns]

    @field_validator("secret")
    @classmethod
    def _strong(cls, secret: WebhookSecret | None) -> WebhookSecret | None:
        if secret is not None:
            secret.check_strength("secret")
        return secret

    @model_validator(mode="after")
    def _json_is_signed(self) -> Webhook:
        if self.format is WebhookFormat.JSON and self.secret is None:
            raise ValueError("a `format: json` webhook needs `secret:` (e.g. `{env: "
                             "NOTIFY_SECRET}`): its receiver verifies X-Interlock-Signature-256")
        return self

    def wants(self, event: NotifyEvent, namespace: str) -> bool:
        return event in self.events and any(matches(p, namespace) for p in self.namespaces)

    def target(self) -> str:
        """The URL to post to, resolved now (SecretError, or ValueError if not http(s))."""
        if isinstance(self.url, str):
            return self.url
        return check_web_url(self.url.resolve(system=self.name))

    def key(self) -> str | None:
        """The HMAC key, resolved now; None when the webhook signs nothing."""
        return self.secret.resolve(system=self.name) if self.secret else None


class Webhooks:
    """The configured webhooks, by name."""

    def __init__(self, hooks: list[Webhook], source: str = "<notify>"):
        self._hooks = {h.name: h for h in hooks}
        self.source = source

    def get(self, name: str) -> Webhook | None:
        return self._hooks.get(name)

    def matching(self, event: NotifyEvent, namespace: str) -> list[Webhook]:
        return [h for h in self._hooks.values() if h.wants(event, namespace)]

    def __len__(self) -> int:
        return len(self._hooks)


def parse_webhooks(text: str, source: str) -> Webhooks:
    """The webhooks in ``text``; NotifyConfigError with every located problem otherwise."""
    if not text.strip():
        return Webhooks([], source)
    doc = load_located(text, source)
    problems = list(doc.problems)
    raw = doc.value.get(WEBHOOKS_KEY) if isinstance(doc.value, dict) else None
    if not problems and (not isinstance(raw, list) or set(doc.value) - {WEBHOOKS_KEY}):
        problems.append(doc.at((), "a notify file is a mapping with one key, `webhooks:`, a "
                                   "list of {name, url, format, secret, events, namespaces}"))
    hooks: list[Webhook] = []
    for index, body in enumerate(raw[:MAX_WEBHOOKS + 1] if isinstance(raw, list) else ()):
        where = (WEBHOOKS_KEY, index)
        if index == MAX_WEBHOOKS:
            problems.append(doc.at(where, f"at most {MAX_WEBHOOKS} webhooks"))
        elif not isinstance(body, dict):
            problems.append(doc.at(where, f"webhook #{index + 1}: expected a mapping with "
                                          "`name` and `url`"))
        else:
            try:
                hooks.append(Webhook.model_validate(body))
            except ValidationError as exc:
                problems += _problems(doc, where, body, exc)
    seen: set[str] = set()
    for index, hook in enumerate(hooks):
        if hook.name in seen:
            problems.append(doc.at((WEBHOOKS_KEY, index), f"webhook {hook.name}: the name is "
                                   "used twice; names must be unique"))
        seen.add(hook.name)
    if problems:
        raise NotifyConfigError(problems)
    return Webhooks(hooks, source)


def _problems(doc: Any, where: tuple[Any, ...], body: dict[str, Any],
              exc: ValidationError) -> list[Problem]:
    name = body.get("name") or f"#{where[-1] + 1}"
    errors = [e for e in exc.errors() if _taken(tuple(e["loc"]), body)] or exc.errors()
    out = []
    for err in errors:
        keys = _keys(tuple(err["loc"]))
        field = ".".join(map(str, keys)) or "webhook"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = f"`{field}` is missing: add it"
        elif err["type"] == "extra_forbidden" and len(keys) == 1:
            message = (f"`{field}` is not a webhook setting (known: "
                       f"{', '.join(Webhook.model_fields)})")
        elif keys[:1] == ("events",) and err["type"] == "enum":
            message = (f"{err['input']!r} is not an event (known: "
                       f"{', '.join(e.value for e in NotifyEvent)})")
        out.append(doc.at((*where, *keys), f"webhook {name}: `{field}`: {message}"))
    return out


def _taken(loc: tuple[Any, ...], body: dict[str, Any]) -> bool:
    """False for an error of the `url` branch the value was not written as (it only
    repeats that a mapping is not a text, or the other way round)."""
    if loc[:1] != ("url",) or len(loc) < 2:
        return True
    return (loc[1] == TEXT_BRANCH) != isinstance(body.get("url"), dict)


def _keys(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic location as a document path (the `url` branch's tag dropped)."""
    return loc[:1] + loc[2:] if loc[:1] == ("url",) and len(loc) >= 2 else loc


def notify_path() -> Path | None:
    return env.current().notify_file


def load_webhooks(path: Path | None = None) -> Webhooks:
    """The notify file, re-read when it changes; none configured: no webhooks.

    NotifyConfigError when the file is named but missing or wrong."""
    path = path or notify_path()
    if path is None:
        return Webhooks([], "<none>")
    try:
        return files.cached_file(path.absolute(), _read_webhooks)
    except FileNotFoundError:
        raise NotifyConfigError([Problem(str(path), 1, 1, (
            "the notify file does not exist: create it, or unset INTERLOCK_NOTIFY_FILE "
            "to notify nobody"))]) from None
    except OSError as exc:
        raise NotifyConfigError([Problem(str(path), 1, 1, f"cannot read the notify file: "
                                         f"{exc.strerror}")]) from None


def _read_webhooks(path: Path) -> Webhooks:
    return parse_webhooks(path.read_text(encoding="utf-8"), str(path))
