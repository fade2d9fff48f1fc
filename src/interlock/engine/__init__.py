"""The pure engine: the planner, the snapshot it reads, and cron tick times. No I/O."""
