"""Who acts: a principal (a token's owner or an OIDC subject) and its role bindings, and the
one door that decides (`Principal.check`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interlock.access.permissions import ROLES, Permission, Role, Scope
from interlock.errors import InterlockError, NotFound
from interlock.spec.namespaces import EVERYWHERE, matches


class Unauthenticated(InterlockError):
    """No credentials, or credentials we do not accept (the API answers one fixed sentence)."""


class Forbidden(InterlockError):
    """Authenticated, but not allowed: says which permission was missing, and where."""

    def __init__(self, message: str, *, actor: str = "", permission: str = "",
                 namespace: str | None = None):
        super().__init__(message)
        self.actor, self.permission, self.namespace = actor, permission, namespace


class PrincipalKind(StrEnum):
    USER = "user"          # a person's API token
    SERVICE = "service"    # a service account's token
    OIDC = "oidc"          # a person or service from the identity provider
    LOCAL = "local"        # the CLI on the store's own machine, without the API
    DEVELOPER = "developer"  # INTERLOCK_AUTH=off: local development only


@dataclass(frozen=True)
class Binding:
    role: Role
    pattern: str  # namespaces.matches


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind
    bindings: tuple[Binding, ...]
    groups: tuple[str, ...] = ()  # the identity provider's groups, or a token's (approvals)

    @property
    def actor(self) -> str:
        """The audit trail's actor."""
        return f"{self.kind.value}:{self.name}"

    def allows(self, permission: Permission, namespace: str | None = None) -> bool:
        """Whether some binding grants ``permission`` on ``namespace`` (global permissions
        and a None namespace need a binding on every namespace)."""
        if permission.scope is Scope.GLOBAL or namespace is None:
            return any(b.pattern == EVERYWHERE and permission in ROLES[b.role]
                       for b in self.bindings)
        return any(permission in ROLES[b.role] and matches(b.pattern, namespace)
                   for b in self.bindings)

    def roles_on(self, namespace: str) -> frozenset[Role]:
        """The roles bound on ``namespace`` (what an approval rule's `role:` asks for)."""
        return frozenset(b.role for b in self.bindings if matches(b.pattern, namespace))

    def sees(self, namespace: str) -> bool:
        """Whether the namespace exists for this principal at all (any role on it)."""
        return any(matches(b.pattern, namespace) for b in self.bindings)

    def patterns_for(self, permission: Permission) -> list[str]:
        """The namespace patterns where ``permission`` holds, to filter lists."""
        return [b.pattern for b in self.bindings if permission in ROLES[b.role]]

    def check(self, permission: Permission, namespace: str | None = None, *,
              what: str = "it") -> None:
        """The one door. A namespace the principal cannot see at all answers as if the
        resource did not exist (404), so names do not leak across namespaces."""
        if self.allows(permission, namespace):
            return
        if namespace is not None and not self.sees(namespace):
            raise NotFound(f"{what} does not exist")
        where = f" in namespace `{namespace}`" if namespace is not None else ""
        raise Forbidden(f"{self.actor} lacks `{permission.value}`{where}", actor=self.actor,
                        permission=permission.value, namespace=namespace)


DEVELOPER = Principal(name="local-development", kind=PrincipalKind.DEVELOPER,
                      bindings=(Binding(Role.ADMIN, EVERYWHERE),))
