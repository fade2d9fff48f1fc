"""Legacy cron jobs Interlock watches but does not run: their expected runs, LATE and MISSED
checks, and the status the API shows."""
