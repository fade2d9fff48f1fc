"""What every command shares: the consoles, the exit codes, and `guarded`, which turns
Interlock's own errors into a message and an exit code instead of a traceback."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from interlock.config.env import settings
from interlock.errors import InterlockError, SpecError
from interlock.spec.inputs import InputError

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
CLI_ACTOR = f"cli:{getpass.getuser()}"  # the audit trail's actor for what this command does
F = TypeVar("F", bound=Callable[..., Any])


def make_url_safe(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Interlock's own errors become a message and an exit code, not a traceback: bad input
    (a flow's problems, inputs, values) exits 2, anything else Interlock refuses exits 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (InputError, ValueError) as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except InterlockError as exc:
            fail(str(exc), EXIT_RUN_FAILED)
        except (OperationalError, ArgumentError) as exc:
            url = make_url_safe(settings().database_url)
            fail(f"cannot use the store at {url}: {str(exc).splitlines()[0]}; check "
                 "INTERLOCK_DATABASE_URL and that the database is running", EXIT_RUN_FAILED)
    return wrapper  # type: ignore[return-value]
