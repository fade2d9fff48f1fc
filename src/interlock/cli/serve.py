"""`interlock serve`: the HTTP API. With `INTERLOCK_AUTH=off` (local development only) it
warns at start, and refuses to listen anywhere but a loopback address."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from interlock.cli.common import EXIT_BAD_INPUT, err, fail
from interlock.config.env import settings

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; anything else (0.0.0.0, a name, ::) is not."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /openapi.json)."""
    if not settings().auth:
        if not is_loopback(host):
            fail(f"INTERLOCK_AUTH=off lets anyone who reaches the API do anything, so it is "
                 f"refused on --host {host}: bind a loopback address (127.0.0.1, ::1, "
                 "localhost), or turn authentication on", EXIT_BAD_INPUT)
        err.print("[bold yellow]warning:[/] authentication is OFF: local development only "
                  "(INTERLOCK_AUTH=off); every caller acts as an admin", highlight=False)
    import uvicorn

    from interlock.api.main import create_app
    uvicorn.run(create_app(), host=host, port=port, log_level="info")
