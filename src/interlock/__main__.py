from interlock.cli.main import app

app(prog_name="interlock")
