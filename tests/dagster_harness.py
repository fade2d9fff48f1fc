"""A real Dagster (``dagster dev``) for integration tests (Linux: uses /proc).

``ensure_venv()`` installs Dagster once into a cached virtualenv; ``DagsterServer`` runs
``dagster dev -f tests/dagster/defs.py`` (webserver + daemon + code server) on a free loopback
port, in its own session so that ``stop()`` can end every process it started (and none other).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

DAGSTER_VERSION = "1.13.27"
PACKAGES = (f"dagster=={DAGSTER_VERSION}", f"dagster-webserver=={DAGSTER_VERSION}",
            f"dagster-graphql=={DAGSTER_VERSION}")
READY_MARKER = ".interlock-ready"


class DagsterHarnessError(RuntimeError):
    """Dagster could not be installed, started or driven; the message carries the log tail."""


def cache_dir() -> Path:
    return Path(os.environ.get("INTERLOCK_TEST_CACHE", "~/.cache/interlock")).expanduser()


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def ensure_venv() -> Path:
    """The cached virtualenv with Dagster ``DAGSTER_VERSION``, installed if needed.

    ``<venv>/.interlock-ready`` is written only after a successful install and check; without
    it the venv is rebuilt from scratch. An fcntl lock serialises concurrent pytest processes.
    """
    root = cache_dir()
    name = f"dagster-{DAGSTER_VERSION}"
    venv = root / name
    marker = venv / READY_MARKER
    if marker.is_file():
        return venv
    root.mkdir(parents=True, exist_ok=True)
    install_log = root / f"{name}.install.log"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():  # another process finished the install while we waited
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        started = time.monotonic()
        check = (
            "import sys, dagster, dagster_graphql, dagster_webserver; "
            "versions = {dagster.__version__, dagster_graphql.__version__, "
            "dagster_webserver.__version__}; print(versions); "
            f"sys.exit(versions != {{{DAGSTER_VERSION!r}}})"
        )
        with open(install_log, "wb") as out:
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", *PACKAGES],
                [str(venv / "bin" / "python"), "-c", check],
            ]
            for cmd in steps:
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, check=False)
                if result.returncode != 0:
                    raise DagsterHarnessError(
                        f"installing Dagster {DAGSTER_VERSION} failed at {cmd[:3]} "
                        f"(exit {result.returncode}); log {install_log}:\n{_tail(install_log)}"
                    )
        marker.write_text(f"{' '.join(PACKAGES)} installed in "
                          f"{time.monotonic() - started:.0f}s at {datetime.now(UTC).isoformat()}\n")
    return venv
