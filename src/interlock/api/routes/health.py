"""`GET /healthz` (alive: the process answers, no I/O) and `GET /readyz` (the store and the
broker answer within a bound). Both are public and outside /api/v1: probes carry no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from interlock import __version__
from interlock.api.security import public
from interlock.operations import health

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    dispatch: str


class Dependency(BaseModel):
    ok: bool
    detail: str
    ms: float


class Readiness(BaseModel):
    status: str                      # "ready" or "unready"
    detail: str                      # one sentence naming what failed
    checks: dict[str, Dependency]    # "store", and "broker" when one is configured


@router.get("/healthz", dependencies=[public("probes carry no token")],
            response_model=Health)
async def healthz(request: Request) -> Health:
    """Liveness: answered on the event loop, so busy worker threads do not make it fail."""
    dispatcher = getattr(request.app.state, "dispatcher", None)
    return Health(status="ok", version=__version__, dispatch=type(dispatcher).__name__)


@router.get("/readyz", dependencies=[public("probes carry no token")],
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "a dependency did not answer"}})
async def readyz() -> JSONResponse:
    """Readiness: 200 when every dependency answered within the bound, else 503."""
    checks = await health.readiness()
    failed = [f"{c.name} {c.detail}" for c in checks if not c.ok]
    body = Readiness(
        status="unready" if failed else "ready",
        detail=f"not ready: {'; '.join(failed)}" if failed else "ready",
        checks={c.name: Dependency(ok=c.ok, detail=c.detail, ms=c.ms) for c in checks})
    return JSONResponse(status_code=503 if failed else 200, content=body.model_dump())
