"""One task, `emit`, whose return value (its XCom) is hostile: shell metacharacters, option
and `../` path injection, template syntax, a NUL byte. tests/test_hostile_values.py feeds
it to every adapter that builds a command line or a path and checks nothing runs.

The values are the test's `PAYLOADS` (copied: a foreign system sends its own values; the
test checks the copy has not drifted). Triggered by the test with `unpause: true`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

PAYLOADS = {
    "semicolon": "2026-01-01; id > pwned-semicolon; id",
    "subst": "$(id > pwned-subst)",
    "backtick": "`id > pwned-backtick`",
    "newline": "2026-01-01\nid > pwned-newline\nid",
    "and": "x && id > pwned-and",
    "pipe": "x | tee pwned-pipe",
    "squote": "' ; id > pwned-squote; echo '",
    "dquote": '" ; id > pwned-dquote; echo "',
    "option": "--outputdir=pwned-outdir",
    "dash_c": "-c",
    "dotdot": "../../outside-vars.yaml",
    "jinja": "{{ 7 * 7 }}",
    "robot_eval": "${{ __import__('os').system('id > pwned-robot-eval') }}",
    "secret": "{{ secret('HOSTILE_TEST_SECRET') }}",
    "nul": "x\x00; id > pwned-nul",
}


@dag(
    dag_id="interlock_hostile",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_hostile():
    @task
    def emit() -> dict:
        return {f"p_{name}": value for name, value in PAYLOADS.items()}

    emit()


interlock_hostile()
