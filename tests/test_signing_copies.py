"""The Airflow listener and the Dagster sensor run where Interlock is not installed, so each
carries a verbatim copy of ``interlock.adapters.signing`` as ``_interlock_signing.py``.
These tests fail when a copy drifts from the original: re-copy the file, do not edit it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from interlock.adapters import signing
from tests.conftest import ROOT

ORIGINAL = ROOT / "src" / "interlock" / "adapters" / "signing.py"
COPIES = [ROOT / "adapters" / "interlock_airflow" / "airflow_plugin" / "_interlock_signing.py",
          ROOT / "adapters" / "interlock_dagster" / "dagster_sensor" / "_interlock_signing.py"]
IDS = [copy.parent.name for copy in COPIES]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_copy_of_signing_{path.parent.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("copy", COPIES, ids=IDS)
def test_vendored_copy_is_byte_identical_to_the_original(copy: Path) -> None:
    assert copy.read_bytes() == ORIGINAL.read_bytes(), (
        f"{copy.relative_to(ROOT)} drifted; run: cp {ORIGINAL.relative_to(ROOT)} "
        f"{copy.relative_to(ROOT)}")


def test_the_original_imports_nothing_from_interlock() -> None:
    # Else the copies could not run where Interlock is not installed.
    assert "interlock" not in "".join(
        line for line in ORIGINAL.read_text().splitlines() if line.startswith(("import", "from")))


@pytest.mark.parametrize("copy", COPIES, ids=IDS)
def test_a_signature_from_the_copy_verifies_with_interlock(copy: Path) -> None:
    vendored = load(copy)
    body = b'{"kind": "run", "state": "success"}'
    headers = vendored.sign("s3cret-s3cret-s3cret", body, now=1_764_000_000)
    signing.verify("s3cret-s3cret-s3cret", timestamp=headers[signing.TIMESTAMP_HEADER],
                   given=headers[signing.SIGNATURE_HEADER], body=body, now=1_764_000_010)
    given = vendored.signature("s3cret-s3cret-s3cret", "1764000000", body)
    signing.verify("s3cret-s3cret-s3cret", timestamp="1764000000", given=given, body=body,
                   now=1_764_000_000)
    with pytest.raises(signing.BadSignature):
        signing.verify("other", timestamp="1764000000", given=given, body=body,
                       now=1_764_000_000)
