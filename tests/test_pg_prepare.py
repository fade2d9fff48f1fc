"""Statements the store runs often are prepared on PostgreSQL (INTERLOCK_PG_PREPARE_AFTER),
and never when it is `off` (PgBouncer before 1.21 in transaction mode)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from interlock.config.env import load_settings, settings
from interlock.store.db import session_scope
from interlock.store.tables import Run


@pytest.mark.parametrize(("value", "expected"), [("5", 5), ("0", 0), ("off", None),
                                                  (" OFF ", None), ("", 5)])
def test_the_setting_reads_a_count_or_off(value: str, expected: int | None) -> None:
    assert load_settings({"INTERLOCK_PG_PREPARE_AFTER": value}).pg_prepare_after == expected


def test_the_default_is_psycopgs_and_a_bad_value_says_what_to_set() -> None:
    assert load_settings({}).pg_prepare_after == 5
    with pytest.raises(ValueError, match="INTERLOCK_PG_PREPARE_AFTER must be a count"):
        load_settings({"INTERLOCK_PG_PREPARE_AFTER": "-1"})
    with pytest.raises(ValueError):
        load_settings({"INTERLOCK_PG_PREPARE_AFTER": "often"})


def _prepared_after_six_runs() -> int:
    """Run one query six times in one transaction (one connection); how many statements
    that connection holds prepared."""
    with session_scope() as session:
        for _ in range(6):
            session.execute(select(func.count()).select_from(Run))
        return session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()


def test_a_statement_run_often_is_prepared(pg_with: pytest.MonkeyPatch) -> None:
    pg_with.setenv("INTERLOCK_PG_PREPARE_AFTER", "5")
    settings.cache_clear()
    assert _prepared_after_six_runs() >= 1


def test_off_prepares_nothing(pg_with: pytest.MonkeyPatch) -> None:
    pg_with.setenv("INTERLOCK_PG_PREPARE_AFTER", "off")
    settings.cache_clear()
    assert _prepared_after_six_runs() == 0
