"""Configuration: settings from the environment, the systems file, status mappings, known
cron jobs, durations, and YAML with positions for located errors."""
