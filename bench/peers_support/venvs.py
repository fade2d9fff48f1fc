"""Cached virtualenvs for the peers, installed the way the test harness installs Airflow
(`tests/harness_process.ensure_venv`: `~/.cache/interlock/<name>`, a ready marker written
only after the install and a version check pass, an fcntl lock against concurrent installs).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import harness_process  # noqa: E402

PREFECT_REQUIREMENTS = ("prefect>=3.9,<3.10",)
# The harness's own Airflow venv has no PostgreSQL driver; this one adds the provider
# (which brings psycopg2) so that the metadata database can be PostgreSQL.
AIRFLOW_VERSION = "3.3.2"
AIRFLOW_REQUIREMENTS = (f"apache-airflow=={AIRFLOW_VERSION}", "apache-airflow-providers-postgres")


class PeerInstallError(RuntimeError):
    """A peer could not be installed; the message carries the install log's tail."""


def _name(kind: str, requirements: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    return f"{kind}-{digest}"


def marker_note(venv: Path) -> str:
    """What the ready marker says: the requirements and how long their install took."""
    return (venv / harness_process.READY_MARKER).read_text().strip()


def prefect_venv() -> Path:
    check = ("import prefect, sys, asyncpg; print(prefect.__version__); "
             "sys.exit(not prefect.__version__.startswith('3.9.'))")
    return harness_process.ensure_venv(_name("prefect", PREFECT_REQUIREMENTS),
                                       list(PREFECT_REQUIREMENTS), check, error=PeerInstallError)


def airflow_venv() -> Path:
    check = ("import airflow, sys, psycopg2; print(airflow.__version__); "
             f"sys.exit(airflow.__version__ != {AIRFLOW_VERSION!r})")
    return harness_process.ensure_venv(_name("airflow-pg", AIRFLOW_REQUIREMENTS),
                                       list(AIRFLOW_REQUIREMENTS), check, error=PeerInstallError)


if __name__ == "__main__":  # python bench/peers_support/venvs.py prefect|airflow
    venv = {"prefect": prefect_venv, "airflow": airflow_venv}[sys.argv[1]]()
    print(venv, marker_note(venv))
