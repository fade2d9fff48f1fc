"""A DAG that leaks the token it is given (tests/test_secrets_foreign.py): `leak` returns it
in XCom raw and base64-encoded and prints it; `refuse` fails with it in the exception."""

from __future__ import annotations

import base64

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="interlock_secret",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_secret():
    @task
    def leak() -> dict:
        token = (get_current_context()["dag_run"].conf or {}).get("token", "")
        print(f"using token {token}")
        return {"token": token, "b64": base64.b64encode(token.encode()).decode()}

    @task
    def refuse(leaked: dict) -> None:
        raise ValueError(f"the API refused token {leaked['token']}")

    refuse(leak())


interlock_secret()
