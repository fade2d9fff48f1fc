"""`interlock tokens create|list|revoke` (locally, or through the API with a token) and
`interlock admin bootstrap` (the first admin token, written to a file only its owner reads).

`tokens create` prints the token, once, and nothing else on stdout, so a script can keep
it (`TOKEN=$(interlock tokens create ...)`); what it is goes to stderr.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.table import Table

from interlock.access.permissions import Role
from interlock.access.tokens import TokenInfo
from interlock.cli.backend import open_backend, remote_mode
from interlock.cli.common import EXIT_BAD_INPUT, JsonOpt, err, fail, guarded, out
from interlock.config.durations import parse_duration
from interlock.config.env import settings
from interlock.operations import access as access_ops

tokens_app = typer.Typer(help="API tokens: create (shown once), list, revoke.",
                         no_args_is_help=True)
admin_app = typer.Typer(help="Setting up an Interlock.", no_args_is_help=True)
NEVER = "never"
ADMIN_TOKEN_FILE = "admin-token"
_INFO = TypeAdapter(TokenInfo)


def _expiry(expires: str) -> timedelta | None:
    if expires.strip().lower() == NEVER:
        return None
    seconds = parse_duration(expires)
    if seconds <= 0:
        raise ValueError(f"--expires {expires!r}: give a duration longer than 0, or `never`")
    return timedelta(seconds=seconds)


def _public(info: TokenInfo) -> dict[str, object]:
    return _INFO.dump_python(info, mode="json")  # type: ignore[no-any-return]


def _when(at: object) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if hasattr(at, "strftime") else ""


@tokens_app.command("create")
@guarded
def create(name: Annotated[str, typer.Option("--name", help="Unique; letters, digits, _.@-")],
           role: Annotated[Role, typer.Option("--role")],
           namespace: Annotated[str, typer.Option(
               "--namespace", help="Where the role holds: `*`, `finance` or `finance.*`.")],
           expires: Annotated[str, typer.Option(
               "--expires", help="A duration (90d, 12h) or `never`.")] = "90d",
           service: Annotated[bool, typer.Option(
               "--service", help="A service account's token, not a person's.")] = False,
           group: Annotated[list[str], typer.Option(
               "--group", help="A group approval rules count the holder in (repeatable).")
           ] = [],  # noqa: B006
           as_json: JsonOpt = False) -> None:
    """Make a token and print it once (stdout); what it grants goes to stderr."""
    expires_in = _expiry(expires)
    with open_backend() as backend:
        token, info = backend.create_token(name=name, role=role, namespace=namespace,
                                           expires_in=expires_in, service=service,
                                           groups=group)
    if as_json:
        typer.echo(json.dumps({"token": token, **_public(info)}))
        return
    typer.echo(token)
    until = f"expires {info.expires_at.isoformat()}" if info.expires_at else "never expires"
    groups = f", groups {', '.join(info.groups)}" if info.groups else ""
    err.print(f"token {info.name} ({info.kind.value}, prefix {info.prefix}): role "
              f"{info.role.value} on {info.namespace}{groups}, {until}. It is shown only now: "
              "keep it in a secret store.", highlight=False, markup=False, soft_wrap=True)


@tokens_app.command("list")
@guarded
def list_(as_json: JsonOpt = False) -> None:
    """Every token (never the token itself): who, what role where, expiry, last use."""
    with open_backend() as backend:
        infos = backend.list_tokens()
    if as_json:
        typer.echo(json.dumps([_public(i) for i in infos]))
        return
    table = Table(title="tokens", title_justify="left")
    for column in ("name", "kind", "prefix", "role", "namespace", "groups", "created",
                   "expires", "last used", "revoked"):
        table.add_column(column)
    for i in infos:
        table.add_row(i.name, i.kind.value, i.prefix, i.role.value, i.namespace,
                      ", ".join(i.groups),
                      _when(i.created_at), _when(i.expires_at) or NEVER,
                      _when(i.last_used_at), _when(i.revoked_at))
    out.print(table)


@tokens_app.command("revoke")
@guarded
def revoke(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Revoke a token at once; calls with it are refused from now on."""
    with open_backend() as backend:
        info = backend.revoke_token(name)
    out.print(f"revoked token {info.name} (prefix {info.prefix})", highlight=False)


@admin_app.command("bootstrap")
@guarded
def bootstrap(output: Annotated[Path | None, typer.Option(
                  "--output", "-o", help="Default: $INTERLOCK_HOME/admin-token.")] = None,
              name: Annotated[str, typer.Option("--name")] = "admin") -> None:
    """Make the first admin token and write it to a file only you can read (never printed)."""
    if remote_mode():
        fail("admin bootstrap writes the first token into the store itself: run it where the "
             "store is, without INTERLOCK_TOKEN", EXIT_BAD_INPUT)
    if output is None:
        output = settings().home / ADMIN_TOKEN_FILE
        output.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        info = access_ops.bootstrap_admin(output, name=name)
    except access_ops.BootstrapError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    typer.echo(f"wrote admin token {info.name} (prefix {info.prefix}) to {output}, readable "
               "only by you; send it as `Authorization: Bearer <token>` or INTERLOCK_TOKEN")
