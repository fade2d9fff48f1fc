"""Interlock's errors as HTTP answers: a 4xx with a message a person can act on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from interlock.approvals.votes import VoteRefused
from interlock.errors import Conflict, NotFound, SpecError
from interlock.policies.points import PolicyRefused
from interlock.spec.inputs import InputError

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled by its timeout


class ErrorBody(BaseModel):
    detail: str
    problems: list[dict[str, object]] | None = None


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(SpecError)
    async def _spec(_: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": f"the flow has {len(exc.problems)} problem(s)",
            "problems": [p.__dict__ for p in exc.problems]})

    @app.exception_handler(PolicyRefused)
    async def _policy(_: Request, exc: PolicyRefused) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": str(exc),
            "problems": [{"policy": d.policy, "rule": d.rule, "subject": d.subject,
                          "message": d.message} for d in exc.decisions]})

    @app.exception_handler(VoteRefused)
    async def _vote(_: Request, exc: VoteRefused) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(InputError)
    async def _inputs(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": str(exc),
            "problems": [{"input": k, "message": v} for k, v in exc.problems.items()]})

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Same shape as every other error: `detail` a sentence, `problems` the particulars.
        problems = jsonable_encoder(exc.errors())
        where = ", ".join(".".join(map(str, p.get("loc", ()))) for p in problems[:3])
        return JSONResponse(status_code=422, content={
            "detail": f"the request is invalid ({len(problems)} problem(s): {where})",
            "problems": problems})

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value (a NUL byte, a number out of range): the request's fault.
        return JSONResponse(status_code=400, content={
            "detail": f"a value in the request cannot be stored: {exc.orig}"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        # Not the request's fault, and worth retrying: the store is unreachable, overloaded,
        # or a statement ran past INTERLOCK_STATEMENT_TIMEOUT_MS. No SQL, no URL in the body.
        return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                            content={"detail": _store_sentence(exc)})

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})


def _store_sentence(exc: Exception) -> str:
    if isinstance(exc, PoolTimeout):
        return "the store's connections are all busy; retry shortly"
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == QUERY_CANCELED:
        return "the store did not answer within the statement timeout; retry shortly"
    return "the store is unavailable; retry shortly"


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "malformed request"},
    404: {"model": ErrorBody, "description": "no such run, flow or node"},
    409: {"model": ErrorBody, "description": "the target's state forbids this"},
    422: {"model": ErrorBody, "description": "invalid flow or inputs; `problems` lists each"},
    503: {"model": ErrorBody, "description": "the store is unavailable; retry"},
}
