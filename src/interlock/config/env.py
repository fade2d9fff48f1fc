"""Settings: every `INTERLOCK_*` variable the project reads, parsed here and nowhere else.

`settings()` reads them once per process. `current()` reads them again, for the file
locations that tests and long-lived shells may change between calls (the systems file, the
mappings folder, the dataset mapping). An interval of `0` always means "never".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path                  # INTERLOCK_HOME: local state (SQLite file, script attempt dirs)
    database_url: str           # INTERLOCK_DATABASE_URL: SQLAlchemy URL of the store
    statement_timeout_ms: int   # INTERLOCK_STATEMENT_TIMEOUT_MS: PostgreSQL query bound; 0 = none
    broker_url: str | None      # INTERLOCK_BROKER_URL: Celery broker; None = embedded dispatch
    api_url: str                # INTERLOCK_API_URL: where CLIs and wrappers reach the API
    queue: str                  # INTERLOCK_QUEUE: the Celery queue workers consume
    lease_s: float              # INTERLOCK_LEASE_SECONDS: unfinished work is re-sent after this
    watch_s: float              # INTERLOCK_WATCH_SECONDS: how often foreign runs are listed
    approvals_sync_s: float     # INTERLOCK_APPROVALS_SYNC_SECONDS: foreign requests listed
    policies_dir: Path          # INTERLOCK_POLICIES: the folder of policy files
    cron_check_s: float         # INTERLOCK_CRON_CHECK_SECONDS: late/missed cron checks; 0 = off
    systems_file: Path          # INTERLOCK_SYSTEMS: the registered systems
    mappings_dir: Path | None   # INTERLOCK_MAPPINGS: status and entity mappings; None = default
    datasets_file: Path | None  # INTERLOCK_DATASETS: None = <mappings>/datasets.yaml
    cron_system: str | None     # INTERLOCK_CRON_SYSTEM: None = cron/<hostname>
    cron_spool: Path | None     # INTERLOCK_CRON_SPOOL: the wrapper's spool; None = under home
    cron_secret: str | None     # INTERLOCK_CRON_SECRET: the wrapper's signing secret
    cron_secret_file: Path | None  # INTERLOCK_CRON_SECRET_FILE: ... or a file holding it
    cron_timeout_s: float       # INTERLOCK_CRON_TIMEOUT: the wrapper's wait for the API
    oidc_issuer: str | None     # INTERLOCK_OIDC_ISSUER: the OpenID issuer; None = no OIDC
    oidc_audience: str | None   # INTERLOCK_OIDC_AUDIENCE: the `aud` Interlock's tokens carry
    oidc_jwks_url: str | None   # INTERLOCK_OIDC_JWKS_URL: None = from the issuer's discovery
    oidc_groups_claim: str      # INTERLOCK_OIDC_GROUPS_CLAIM: the claim listing groups
    auth: bool                  # INTERLOCK_AUTH: `off` only for local development
    oidc_bindings_file: Path | None  # INTERLOCK_OIDC_BINDINGS: groups -> role bindings
    oidc_console_client: str | None = None  # INTERLOCK_OIDC_CONSOLE_CLIENT: the console's
    #   public client id at the issuer (authorization code + PKCE); None = token login only
    oidc_console_scopes: str = "openid"  # INTERLOCK_OIDC_CONSOLE_SCOPES: space-separated
    max_body_bytes: int = 1 << 20  # INTERLOCK_MAX_BODY_BYTES: larger request bodies get 413
    allowed_origins: tuple[str, ...] = ()  # INTERLOCK_ALLOWED_ORIGINS: comma-separated
    #   origins (https://console.example.com) allowed to send mutating requests cross-site
    token: str | None = field(default=None, repr=False)  # INTERLOCK_TOKEN: the CLI's API
    #   token; when set, the CLI goes through the API at INTERLOCK_API_URL (remote mode)
    run_as: str | None = None  # INTERLOCK_RUN_AS: the OS user script and robot nodes run as
    #   when neither their system nor their namespace names one; a root worker with none
    #   refuses to run them as root unless this is `root` (docs/deploy.md)
    work_roots: tuple[Path, ...] = ()  # INTERLOCK_WORK_ROOTS: os.pathsep-separated folders
    #   a local process's `cwd` must be inside; () = the worker's current directory
    retention_days: float = 0.0  # INTERLOCK_RETENTION_DAYS: the reconciler purges finished runs
    #   older than this (`interlock purge`); 0 = keep everything
    audit_key: str | None = field(default=None, repr=False)  # INTERLOCK_AUDIT_KEY: HMAC key
    #   signing audit archive anchors (at least 16 bytes)
    audit_key_file: Path | None = None  # INTERLOCK_AUDIT_KEY_FILE: ... or a file holding it
    secrets_backend: str = "env"  # INTERLOCK_SECRETS_BACKEND: where `secret('NAME')` resolves
    secrets_dir: Path | None = None  # INTERLOCK_SECRETS_DIR: the `file` backend's folder
    notify_file: Path | None = None  # INTERLOCK_NOTIFY_FILE: webhooks told of approvals
    #   (`docs/notifications.md`); None = notify nobody
    deadlines_s: float = 10.0  # INTERLOCK_DEADLINES_SECONDS: how often `sla:` deadlines are
    #   checked (LATE, at_risk; `docs/deadlines.md`); 0 = never
    idle_tx_timeout_ms: int = 60000  # INTERLOCK_IDLE_TX_TIMEOUT_MS: PostgreSQL ends a session
    #   idle inside a transaction this long (its host lost the network), releasing its row
    #   locks; 0 = never (docs/deploy.md, "Across hosts")
    pg_dead_link_ms: int = 30000  # INTERLOCK_PG_DEAD_LINK_MS: a PostgreSQL connection whose
    #   peer has not acknowledged it this long (TCP keepalives, unacknowledged data) is dropped
    #   with an error instead of hanging; 0 = the OS's bounds (hours; docs/deploy.md)
    pg_prepare_after: int | None = 5  # INTERLOCK_PG_PREPARE_AFTER: a statement run this many
    #   times on a connection is prepared (PostgreSQL parses and plans it once); `off` = never
    #   (PgBouncer before 1.21 in transaction mode; docs/operations.md)

    @property
    def attempts_dir(self) -> Path:
        return self.home / "attempts"

    @property
    def embedded(self) -> bool:
        return self.broker_url is None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("INTERLOCK_HOME", ".interlock")).resolve()
    database_url = env.get("INTERLOCK_DATABASE_URL") or f"sqlite:///{home / 'interlock.db'}"
    return Settings(
        home=home,
        database_url=database_url,
        statement_timeout_ms=int(env.get("INTERLOCK_STATEMENT_TIMEOUT_MS", "30000")),
        broker_url=env.get("INTERLOCK_BROKER_URL") or None,
        api_url=env.get("INTERLOCK_API_URL", "http://127.0.0.1:8000"),
        queue=env.get("INTERLOCK_QUEUE", "interlock"),
        lease_s=float(env.get("INTERLOCK_LEASE_SECONDS", "15")),
        watch_s=float(env.get("INTERLOCK_WATCH_SECONDS", "15")),
        approvals_sync_s=float(env.get("INTERLOCK_APPROVALS_SYNC_SECONDS", "5")),
        policies_dir=_path(env.get("INTERLOCK_POLICIES")) or Path("policies"),
        cron_check_s=float(env.get("INTERLOCK_CRON_CHECK_SECONDS", "15")),
        systems_file=systems_file(env),
        mappings_dir=_path(env.get("INTERLOCK_MAPPINGS")),
        datasets_file=_path(env.get("INTERLOCK_DATASETS")),
        cron_system=env.get("INTERLOCK_CRON_SYSTEM") or None,
        cron_spool=_path(env.get("INTERLOCK_CRON_SPOOL")),
        cron_secret=env.get("INTERLOCK_CRON_SECRET") or None,
        cron_secret_file=_path(env.get("INTERLOCK_CRON_SECRET_FILE")),
        cron_timeout_s=float(env.get("INTERLOCK_CRON_TIMEOUT", "5")),
        oidc_issuer=env.get("INTERLOCK_OIDC_ISSUER") or None,
        oidc_audience=env.get("INTERLOCK_OIDC_AUDIENCE") or None,
        oidc_jwks_url=env.get("INTERLOCK_OIDC_JWKS_URL") or None,
        oidc_groups_claim=env.get("INTERLOCK_OIDC_GROUPS_CLAIM") or "groups",
        auth=env.get("INTERLOCK_AUTH", "on").strip().lower() != "off",
        oidc_bindings_file=_path(env.get("INTERLOCK_OIDC_BINDINGS")),
        oidc_console_client=env.get("INTERLOCK_OIDC_CONSOLE_CLIENT", "").strip() or None,
        oidc_console_scopes=" ".join(
            env.get("INTERLOCK_OIDC_CONSOLE_SCOPES", "openid").split()) or "openid",
        max_body_bytes=int(env.get("INTERLOCK_MAX_BODY_BYTES") or 1 << 20),
        allowed_origins=tuple(o.strip() for o in env.get("INTERLOCK_ALLOWED_ORIGINS", "")
                              .split(",") if o.strip()),
        token=env.get("INTERLOCK_TOKEN", "").strip() or None,
        run_as=env.get("INTERLOCK_RUN_AS", "").strip() or None,
        work_roots=tuple(Path(p) for p in env.get("INTERLOCK_WORK_ROOTS", "")
                         .split(os.pathsep) if p.strip()),
        retention_days=float(env.get("INTERLOCK_RETENTION_DAYS") or 0),
        audit_key=env.get("INTERLOCK_AUDIT_KEY") or None,
        audit_key_file=_path(env.get("INTERLOCK_AUDIT_KEY_FILE")),
        secrets_backend=env.get("INTERLOCK_SECRETS_BACKEND", "").strip() or "env",
        secrets_dir=_path(env.get("INTERLOCK_SECRETS_DIR")),
        notify_file=_path(env.get("INTERLOCK_NOTIFY_FILE")),
        deadlines_s=float(env.get("INTERLOCK_DEADLINES_SECONDS") or 10),
        idle_tx_timeout_ms=int(env.get("INTERLOCK_IDLE_TX_TIMEOUT_MS") or 60000),
        pg_dead_link_ms=int(env.get("INTERLOCK_PG_DEAD_LINK_MS") or 30000),
        pg_prepare_after=_prepare_after(env.get("INTERLOCK_PG_PREPARE_AFTER") or "5"),
    )


def _prepare_after(value: str) -> int | None:
    value = value.strip().lower()
    if value in ("off", "none"):
        return None
    count = int(value)
    if count < 0:
        raise ValueError(f"INTERLOCK_PG_PREPARE_AFTER must be a count of 0 or more, or `off`; "
                         f"got {value}")
    return count


def systems_file(env: Mapping[str, str] | None = None) -> Path:
    """INTERLOCK_SYSTEMS as the environment says now. Read on every load of the systems
    file (each node submit), so alone: building all the settings for it cost more than the
    rest of a noop node."""
    return Path((os.environ if env is None else env).get("INTERLOCK_SYSTEMS") or "systems.yaml")


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@cache
def settings() -> Settings:
    return load_settings()


def current() -> Settings:
    """The settings as the environment says now (not cached)."""
    return load_settings()
