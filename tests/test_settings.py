"""Every `INTERLOCK_*` variable is read in one place, `interlock.config.env`."""

from __future__ import annotations

import re
from pathlib import Path

from interlock.config.env import load_settings

ROOT = Path(__file__).resolve().parent.parent
READ = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']INTERLOCK_""")
# Code that runs inside another program, where Interlock's settings do not exist.
FOREIGN = ("adapters/interlock_airflow/airflow_plugin/",
           "adapters/interlock_dagster/dagster_sensor/")
ONE_PLACE = "src/interlock/config/env.py"


def test_no_interlock_variable_is_read_outside_settings() -> None:
    readers = []
    for path in sorted([*ROOT.glob("src/**/*.py"), *ROOT.glob("adapters/**/*.py")]):
        rel = str(path.relative_to(ROOT))
        if rel == ONE_PLACE or rel.startswith(FOREIGN):
            continue
        readers += [f"{rel}:{n}" for n, line in
                    enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                    if READ.search(line)]
    assert readers == []


def test_the_pattern_sees_a_read() -> None:
    assert READ.search('x = os.environ.get("INTERLOCK_SYSTEMS")')
    assert READ.search("os.environ['INTERLOCK_HOME']")
    assert not READ.search('os.environ.get("HOME")')


def test_settings_hold_the_file_locations_and_the_cron_wrapper(tmp_path: Path) -> None:
    s = load_settings({"INTERLOCK_HOME": str(tmp_path), "INTERLOCK_SYSTEMS": "/etc/s.yaml",
                       "INTERLOCK_CRON_TIMEOUT": "2", "INTERLOCK_CRON_SECRET": "k"})
    assert s.systems_file == Path("/etc/s.yaml")
    assert s.mappings_dir is None and s.datasets_file is None
    assert s.home == tmp_path and s.cron_spool is None  # the wrapper spools under home
    assert (s.cron_timeout_s, s.cron_secret, s.cron_system) == (2.0, "k", None)


def test_retention_is_off_and_the_audit_key_unset_unless_configured(tmp_path: Path) -> None:
    s = load_settings({"INTERLOCK_HOME": str(tmp_path)})
    assert (s.retention_days, s.audit_key, s.audit_key_file) == (0, None, None)
    s = load_settings({"INTERLOCK_RETENTION_DAYS": "90", "INTERLOCK_AUDIT_KEY": "k" * 32,
                       "INTERLOCK_AUDIT_KEY_FILE": "/etc/interlock/audit.key"})
    assert (s.retention_days, s.audit_key_file) == (90, Path("/etc/interlock/audit.key"))
    assert "k" * 32 not in repr(s)  # a key never reaches a log line
