"""Settings, read from the environment (`INTERLOCK_*`) once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path                  # INTERLOCK_HOME: local state (SQLite file, script attempt dirs)
    database_url: str           # INTERLOCK_DATABASE_URL: SQLAlchemy URL of the store
    broker_url: str | None      # INTERLOCK_BROKER_URL: Celery broker; None = embedded dispatch
    api_url: str                # INTERLOCK_API_URL: where CLIs and wrappers reach the API
    queue: str                  # INTERLOCK_QUEUE: the Celery queue workers consume
    lease_s: float              # INTERLOCK_LEASE_SECONDS: unfinished work is re-sent after this
    watch_s: float              # INTERLOCK_WATCH_SECONDS: how often foreign runs are listed
    cron_check_s: float         # INTERLOCK_CRON_CHECK_SECONDS: late/missed cron checks; 0 = off

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
        broker_url=env.get("INTERLOCK_BROKER_URL") or None,
        api_url=env.get("INTERLOCK_API_URL", "http://127.0.0.1:8000"),
        queue=env.get("INTERLOCK_QUEUE", "interlock"),
        lease_s=float(env.get("INTERLOCK_LEASE_SECONDS", "15")),
        watch_s=float(env.get("INTERLOCK_WATCH_SECONDS", "15")),
        cron_check_s=float(env.get("INTERLOCK_CRON_CHECK_SECONDS", "15")),
    )


@cache
def settings() -> Settings:
    return load_settings()
