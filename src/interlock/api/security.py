"""The API's door: every route declares its permission here, next to its path.

    access: Annotated[Access, requires(Permission.RUNS_CANCEL)]

authenticates the caller (an Interlock token or an OIDC JWT, `Authorization: Bearer`), and
for a global permission authorizes at once; for a namespaced one the route loads the
resource and calls `access.check(resource.namespace)` (the namespace comes from the
resource, never only from the request). Routes that take no bearer credential say why with
`public("...")`. `tests/test_access_routes.py` fails on a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from interlock.access.permissions import Permission, Scope
from interlock.access.principals import Forbidden, Principal, Unauthenticated
from interlock.api.deps import request_origin
from interlock.operations import access as access_ops

# One sentence for every refusal of credentials: it names no system, file or variable.
UNAUTHENTICATED = "authentication required: send `Authorization: Bearer <token>`"
_bearer = HTTPBearer(auto_error=False, description="An Interlock API token or an OIDC JWT")


@dataclass(frozen=True)
class Access:
    """The authenticated caller and the permission the route declared."""

    principal: Principal
    permission: Permission
    origin: str

    @property
    def actor(self) -> str:
        return self.principal.actor

    def check(self, namespace: str | None, *, what: str = "it") -> None:
        self.principal.check(self.permission, namespace, what=what)

    def allows(self, permission: Permission, namespace: str | None) -> bool:
        return self.principal.allows(permission, namespace)

    def with_permission(self, permission: Permission) -> Access:
        return Access(self.principal, permission, self.origin)

    def scope_to(self, namespace: str | None) -> None:
        """For listings that take an optional namespace: the caller must name one it may
        read unless it may read them all (statistics are not filtered row by row)."""
        if namespace is None and not self.allows(self.permission, None):
            raise Forbidden(f"{self.actor} may read only some namespaces: pass `namespace=`",
                            actor=self.actor, permission=self.permission.value)
        self.check(namespace)

    def patterns(self) -> list[str]:
        """Where the declared permission holds: lists are filtered to these."""
        return self.principal.patterns_for(self.permission)


async def current_principal(request: Request,
                            _: Annotated[Any, Depends(_bearer)] = None) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    header = request.headers.get("authorization")
    principal = access_ops.cached_principal(header)
    if principal is None:
        principal = await run_in_threadpool(access_ops.authenticate, header)
    request.state.principal = principal
    return principal


def requires(permission: Permission) -> Any:
    """The dependency a route declares: authenticated, and allowed `permission`
    (checked now when global, by `Access.check` on the resource when namespaced)."""
    async def dependency(request: Request,  # async: no I/O here, so no thread hop
                         principal: Annotated[Principal, Depends(current_principal)]) -> Access:
        access = Access(principal, permission, request_origin(request))
        if permission.scope is Scope.GLOBAL:
            access.check(None)
        elif not principal.patterns_for(permission):
            raise Forbidden(f"{principal.actor} lacks `{permission.value}` in every namespace",
                            actor=principal.actor, permission=permission.value)
        return access

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)


def public(reason: str) -> Any:
    """A route that takes no bearer credential, and why (e.g. HMAC-signed pushes)."""
    def dependency() -> None:
        return None

    dependency.public = reason  # type: ignore[attr-defined]
    return Depends(dependency)


def declared(call: Callable[..., Any]) -> Permission | str | None:
    """What a dependency declares: its permission, its public reason, or None."""
    return getattr(call, "permission", None) or getattr(call, "public", None)


def install(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, __: Unauthenticated) -> JSONResponse:
        return JSONResponse(status_code=401, content={"detail": UNAUTHENTICATED},
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        await run_in_threadpool(access_ops.record_denial, exc,
                                target=f"{request.method} {request.url.path}",
                                origin=request_origin(request))
        return JSONResponse(status_code=403, content={"detail": str(exc)})
