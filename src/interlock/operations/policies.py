"""Policies for the CLI: `interlock validate` checks flow files against the policies that
cover them (nothing is audited: validating decides nothing) and checks policy files too (a
YAML document with a top-level `policy:` key is one)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from interlock.config.yamlpos import load_located
from interlock.errors import Problem, SpecError
from interlock.policies import points
from interlock.policies.load import covering, load_policies, parse_policy
from interlock.spec.loader import expand, load_flow

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
