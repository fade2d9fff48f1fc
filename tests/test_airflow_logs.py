"""The excerpt of a failed Airflow task's log keeps the task's error, even when lines
logged after the failure (a lineage listener retrying, say) fill the log's tail."""

from __future__ import annotations

from interlock_airflow.tasks import TRUNCATED, _log_lines, capped

ERROR = {"level": "error", "event": "Task failed with exception",
         "error_detail": [{"exc_type": "ValueError", "exc_value": "sanctions list unreachable"}]}


def _records(noise_after: int) -> list[dict[str, object]]:
    before = [{"level": "info", "event": f"checking sanctions list, step {i}"} for i in range(50)]
    after = [{"level": "warning", "event": f"openlineage: retry {i} after connection refused"}
             for i in range(noise_after)]
    return [*before, ERROR, *after]


def test_the_error_stays_in_the_excerpt_when_noise_follows_it() -> None:
    text, error_at = _log_lines(_records(noise_after=200))
    assert error_at is not None and text[:error_at].endswith("sanctions list unreachable\n")
    excerpt = capped(text, 2000, error_at)
    assert "ValueError: sanctions list unreachable" in excerpt
    assert len(excerpt) <= 2000 + 2 * len(TRUNCATED)
    assert excerpt.startswith(TRUNCATED) and "retry 0 after" in excerpt  # what followed, a bit


def test_a_short_log_is_whole_and_a_tail_error_keeps_the_tail() -> None:
    text, error_at = _log_lines(_records(noise_after=2))
    assert capped(text, 100_000, error_at) == text
    tail = capped(text, 500, error_at)
    assert tail == TRUNCATED + text[-500:] and "sanctions list unreachable" in tail


def test_plain_text_logs_are_tailed() -> None:
    text, error_at = _log_lines("line\n" * 1000)
    assert error_at is None and capped(text, 50, error_at) == TRUNCATED + text[-50:]
