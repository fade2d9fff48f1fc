"""The web console at `/`: its built files, and its single page for the client's own routes
(`/runs/<id>`...). Paths under `/api` never reach it, so the API's 404s stay the API's.

The files carry no data (every API call the page makes carries the caller's token), so the
route is public; the page's headers forbid inline scripts, other origins and framing
(`interlock.console.headers`). Without a build it answers 503 with the command that
builds one.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from interlock.api.security import public
from interlock.console import files, headers
from interlock.console.login import connect_sources


class ConsolePath(Convertor[str]):
    """Any path but `/api` and what is under it."""

    regex = r"(?!api(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("console", ConsolePath())
router = APIRouter(include_in_schema=False)


@router.get("/{path:console}", dependencies=[public(
    "the console's files hold no data: the page's API calls carry the caller's token")])
async def console(path: str) -> Response:
    found = files.lookup(path)
    if found.status == 503:
        return HTMLResponse(files.MISSING, status_code=503, headers=headers.PAGE)
    if found.path is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404, headers=headers.PAGE)
    return FileResponse(found.path, headers=headers.ASSET if found.asset
                        else headers.page(connect_sources()))
