"""Policies as code (`docs/policies.md`): rules in CEL over flows, nodes, systems, runs and
principals, scoped to namespace patterns, checked when a flow is registered or validated,
when a run starts and before each node is submitted; every decision audited.

`model` is the policy file, `load` the folder of them, `context` what a rule sees, `engine`
the evaluation (compiled CEL, no I/O), `points` the three places they are checked.
"""
