"""The worker's side of secrets for a local process: where they may be, and which env
values must not be written to spec.json (see :mod:`interlock_script.sealed`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.adapters import InterlockError, Rejected, load_systems
from interlock.adapters.masking import Masker
from interlock_script.sealed import Sealed

ENV_KEY = "env"


def only_in_env(params: Mapping[str, Any], secrets: tuple[str, ...], kind: str) -> None:
    """Rejected when a secret sits anywhere in ``params`` but `env:` values."""
    if not secrets:
        return
    mask = Masker(secrets)
    outside = {k: v for k, v in params.items() if k != ENV_KEY}
    env_names = list(params.get(ENV_KEY, {}))
    if mask.deep(outside) != outside or mask.deep(env_names) != env_names:
        raise Rejected(f"uses: {kind}: a secret can only be an `env:` value (a command line "
                       "is visible to every user of the host, and files stay on disk); write "
                       "`env: {TOKEN: \"{{ secret('TOKEN') }}\"}` and read $TOKEN")


def split_env(env: Mapping[str, str], secrets: tuple[str, ...]) -> tuple[dict[str, str], Sealed]:
    """(env for spec.json, sealed env for the pipe): a value holding a secret is sealed."""
    mask = Masker(secrets)
    plain = {k: v for k, v in env.items() if mask.text(v) == v}
    sealed = {k: v for k, v in env.items() if k not in plain}
    return plain, Sealed(env=sealed, mask=secrets)


def refuse_system_secrets(inherit_env: list[str]) -> None:
    """`inherit_env` may not copy a variable the systems file holds a secret in (an
    Airflow password would land in the script's environment, and from there in its log)."""
    if not inherit_env:
        return
    try:
        held = load_systems().secret_env_names()
    except InterlockError as exc:  # cannot tell what is secret: copy nothing
        raise Rejected(f"`inherit_env` cannot be checked against the systems file: {exc}") \
            from None
    named = sorted(set(inherit_env) & held)
    if named:
        raise Rejected(f"`inherit_env` names {', '.join(named)}, which the systems file uses "
                       "as a secret; a node gets a secret only as `env: {NAME: \"{{ "
                       "secret('NAME') }}\"}` (masked in its log)")
