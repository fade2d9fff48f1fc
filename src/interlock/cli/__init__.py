"""The `interlock` command line (Typer + Rich)."""
