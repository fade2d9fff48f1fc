"""Status mappings load, map, and refuse gaps and unknown states at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.config.mappings import MappingError, StatusMapping
from interlock.states import NodeState

GOOD = """
system: example
statuses: {queued: queued, running: running, success: succeeded, failed: failed}
"""


def test_a_mapping_maps_foreign_statuses(tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(GOOD)
    mapping = StatusMapping.load(path, required=["queued", "running", "success", "failed"])
    assert mapping.system == "example"
    assert mapping.state_of("success") is NodeState.SUCCEEDED
    with pytest.raises(MappingError, match=r"status 'upstream_failed' has no mapping"):
        mapping.state_of("upstream_failed")


def test_a_missing_status_is_refused_when_the_mapping_loads() -> None:
    with pytest.raises(MappingError, match=r"no mapping for status\(es\) 'skipped'"):
        StatusMapping.parse(GOOD, source="mappings/example.yaml",
                            required=["success", "failed", "skipped"])


def test_an_unknown_target_state_is_refused() -> None:
    with pytest.raises(MappingError, match=r"'success' maps to 'done', which is not a state"):
        StatusMapping.parse("statuses: {success: done}", source="m.yaml")


@pytest.mark.parametrize("text", ["statuses: [a, b]", "- 1", "statuses: {a: [}"])
def test_malformed_mappings_are_refused_with_the_file_named(text: str) -> None:
    with pytest.raises(MappingError, match=r"^m\.yaml: "):
        StatusMapping.parse(text, source="m.yaml")
