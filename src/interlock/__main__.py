"""`python -m interlock`: the `interlock` command, for hosts where its script is not on PATH."""

from interlock.cli.main import app

app(prog_name="interlock")
