"""Cross-tool deadlines (`docs/deadlines.md`): a flow's or a node's `sla:` gives a due
instant (`due`); the monitor (`monitor`) flags runs and nodes LATE when it passes and
`at_risk` before it when the finish estimated from history (`history`, `estimate`) passes
it. Each flag is set once (`flags`): audited, notified, and for runs fires `after:`."""
