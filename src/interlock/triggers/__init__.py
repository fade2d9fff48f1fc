"""What starts a run besides a person: `after:` (another run finished), webhooks, and
`schedule:` ticks fired by `interlock scheduler`."""
