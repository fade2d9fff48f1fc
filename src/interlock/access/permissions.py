"""The one permission table: what each role may do. Read it like the transition table.

A permission is resource x action. Namespace-scoped permissions are checked against the
namespace of the resource itself (a run's, a flow's); global ones (the audit trail, the
systems, tokens, metrics) need a binding on every namespace (`*`). `docs/access.md` is
generated from this table (`python -m interlock.access.permissions`).
"""

from __future__ import annotations

from enum import StrEnum


class Resource(StrEnum):
    FLOWS = "flows"
    RUNS = "runs"
    LOGS = "logs"
    OUTPUTS = "outputs"
    APPROVALS = "approvals"
    AUDIT = "audit"
    LINEAGE = "lineage"
    SYSTEMS = "systems"
    TOKENS = "tokens"
    POLICIES = "policies"


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    EXECUTE = "execute"
    CANCEL = "cancel"
    RETRY = "retry"
    APPROVE = "approve"
    ADMIN = "admin"


class Scope(StrEnum):
    NAMESPACE = "namespace"  # checked against the resource's namespace; bindings inherit down
    GLOBAL = "global"        # needs a binding on `*`


class Permission(StrEnum):
    FLOWS_READ = "flows:read"            # list flows, their revisions, validate a flow file
    FLOWS_CREATE = "flows:create"        # register a flow (a new revision)
    RUNS_READ = "runs:read"              # runs, their nodes, events, traces, dashboards
    RUNS_EXECUTE = "runs:execute"        # start a run
    RUNS_CANCEL = "runs:cancel"
    RUNS_RETRY = "runs:retry"
    LOGS_READ = "logs:read"              # a node's log (may hold data: kept apart from runs:read)
    OUTPUTS_READ = "outputs:read"        # nodes' outputs (same)
    APPROVALS_READ = "approvals:read"
    APPROVALS_APPROVE = "approvals:approve"
    LINEAGE_READ = "lineage:read"        # the lineage graph, impact, dataset history
    LINEAGE_CREATE = "lineage:create"    # post OpenLineage events (producers)
    AUDIT_READ = "audit:read"            # the audit trail, its export and verification
    SYSTEMS_READ = "systems:read"        # system health, cron jobs, metrics
    TOKENS_ADMIN = "tokens:admin"        # create, list and revoke API tokens
    POLICIES_ADMIN = "policies:admin"    # write and delete policies (on their scope's root)

    @property
    def resource(self) -> Resource:
        return Resource(self.value.split(":")[0])

    @property
    def action(self) -> Action:
        return Action(self.value.split(":")[1])

    @property
    def scope(self) -> Scope:
        return Scope.GLOBAL if self in GLOBAL else Scope.NAMESPACE


GLOBAL = frozenset({Permission.AUDIT_READ, Permission.SYSTEMS_READ, Permission.TOKENS_ADMIN,
                    Permission.LINEAGE_READ, Permission.LINEAGE_CREATE})
# Lineage is global: its graph joins every system's jobs and datasets, which belong to no
# Interlock namespace.


class Role(StrEnum):
    VIEWER = "viewer"        # sees flows, runs, lineage
    LAUNCHER = "launcher"    # ... and starts runs
    OPERATOR = "operator"    # ... and cancels, retries, reads logs and outputs
    EDITOR = "editor"        # ... and registers flows
    APPROVER = "approver"    # sees, and votes on approvals
    AUDITOR = "auditor"      # sees, and reads the audit trail and system health
    PRODUCER = "producer"    # a service that posts OpenLineage events, nothing else
    ADMIN = "admin"          # everything, including tokens


_P = Permission
_VIEW = frozenset({_P.FLOWS_READ, _P.RUNS_READ, _P.APPROVALS_READ, _P.LINEAGE_READ})
_LAUNCH = _VIEW | {_P.RUNS_EXECUTE}
_OPERATE = _LAUNCH | {_P.RUNS_CANCEL, _P.RUNS_RETRY, _P.LOGS_READ, _P.OUTPUTS_READ}

# The one table.
ROLES: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEW,
    Role.LAUNCHER: _LAUNCH,
    Role.OPERATOR: _OPERATE,
    Role.EDITOR: _OPERATE | {_P.FLOWS_CREATE},
    Role.APPROVER: _VIEW | {_P.APPROVALS_APPROVE},
    Role.AUDITOR: _VIEW | {_P.AUDIT_READ, _P.SYSTEMS_READ, _P.LOGS_READ},
    Role.PRODUCER: frozenset({_P.LINEAGE_CREATE}),
    Role.ADMIN: frozenset(Permission),
}


def markdown_table() -> str:
    """The role x permission table, for docs/access.md."""
    roles = list(Role)
    lines = ["| permission | scope | " + " | ".join(r.value for r in roles) + " |",
             "| --- | --- | " + " | ".join("---" for _ in roles) + " |"]
    for perm in Permission:
        marks = " | ".join("x" if perm in ROLES[r] else "" for r in roles)
        lines.append(f"| `{perm.value}` | {perm.scope.value} | {marks} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
