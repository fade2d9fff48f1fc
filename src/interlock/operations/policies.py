"""Policies for the CLI and the API: `interlock validate` checks flow files against the
policies that cover them (nothing is audited: validating decides nothing) and checks policy
files too (a YAML document with a top-level `policy:` key is one); the API lists the
policies in force, and writes and deletes policy files (audited)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from interlock.config.yamlpos import load_located
from interlock.errors import NotFound, Problem, SpecError
from interlock.policies import points, writes
from interlock.policies.load import Loaded, covering, load_policies, parse_policy
from interlock.spec.loader import expand, load_flow
from interlock.store import audit
from interlock.store.db import session_scope

VALIDATOR = "cli:validate"
POLICY_KEY = "policy"


def validate(paths: Iterable[str | Path]) -> list[Problem]:
    """Every problem of every file: a flow's own, its policy violations (located at the node
    or the flow's id), a policy file's own; and those of the configured policy folder."""
    try:
        load_policies()
        policies_ok = True
    except SpecError as exc:
        problems, policies_ok = list(exc.problems), False
    else:
        problems = []
    for path in expand(paths):
        problems += _check(path, policies_ok)
    return problems


def _check(path: Path, policies_ok: bool) -> list[Problem]:
    try:
        text = path.read_text(encoding="utf-8")
        if _is_policy(text):
            parse_policy(text, str(path))
            return []
        flow = load_flow(path)
    except SpecError as exc:
        return exc.problems
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(str(path), 1, 1, f"cannot read the file: {exc}")]
    if not policies_ok:
        return []
    refused, _ = points.registration_problems(flow, text, str(path), actor=VALIDATOR)
    return refused


def _is_policy(text: str) -> bool:
    """(Read with the guarded loader: alias bombs and huge documents are refused there.)"""
    head = load_located(text, "<peek>").value
    return isinstance(head, dict) and POLICY_KEY in head


def in_force(namespace: str) -> list[dict[str, object]]:
    """The policies that hold in ``namespace`` (off ones left out), as the API shows them."""
    return [{"policy": p.policy.policy, "scope": p.policy.scope, "mode": p.policy.mode.value,
             "revision": p.revision, "file": Path(p.file).name,
             "description": p.policy.description,
             "rules": [r.model_dump(mode="json") for r in p.policy.rules]}
            for p in covering(namespace)]


def check_source(source: str, file: str) -> list[Problem]:
    """The problems of a policy file's text (none: it would load)."""
    try:
        parse_policy(source, file)
    except SpecError as exc:
        return exc.problems
    return []


def put(name: str, source: str, *, actor: str, may_write: Callable[[str], None],
        expected: str | None = None, origin: str = audit.LOCAL_ORIGIN) -> dict[str, object]:
    """Write policy ``name`` (its text checked first) into the policy folder, audited.
    ``may_write(scope)`` raises unless the caller may write policies on that scope; it is
    asked for the new scope and, when the policy exists, for its current one."""
    loaded = writes.parse_named(name, source)
    may_write(loaded.policy.scope)
    with writes.folder_lock(create=True):
        before = writes.current(name)
        if before is not None:
            may_write(before.policy.scope)
        # Audited first, in the transaction that ends the block: a store that is down
        # refuses the record before the file changes, and a failed commit puts it back.
        with writes.undone_on_error(name), session_scope() as session:
            audit.record(session, actor=actor, action=audit.Action.POLICY_WRITTEN,
                         target=f"policies/{name}", origin=origin,
                         before=_facts(before) if before else None, after=_facts(loaded))
            before, path = writes.write(loaded, source, expected=expected)
    return {**_facts(loaded), "file": path.name, "created": before is None}


def delete(name: str, *, actor: str, may_write: Callable[[str], None],
           expected: str | None = None, origin: str = audit.LOCAL_ORIGIN) -> None:
    with writes.folder_lock(create=False):
        found = writes.current(name)
        if found is None:
            raise NotFound(f"policy `{name}` does not exist")
        may_write(found.policy.scope)
        with writes.undone_on_error(name), session_scope() as session:  # as in `put`
            audit.record(session, actor=actor, action=audit.Action.POLICY_DELETED,
                         target=f"policies/{name}", origin=origin, before=_facts(found))
            writes.delete(name, expected=expected)


def _facts(loaded: Loaded) -> dict[str, object]:
    policy = loaded.policy
    return {"policy": policy.policy, "revision": loaded.revision, "scope": policy.scope,
            "mode": policy.mode.value, "rules": [r.name for r in policy.rules],
            "concurrency": policy.concurrency.runs if policy.concurrency else None}
