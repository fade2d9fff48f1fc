"""docs/access.md carries the permission table exactly as the code defines it."""

from pathlib import Path

from interlock.access.permissions import markdown_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "access.md"


def test_the_documented_permission_table_is_the_code() -> None:
    assert markdown_table() in DOC.read_text(encoding="utf-8")
