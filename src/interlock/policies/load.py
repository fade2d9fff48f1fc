"""The policy folder (`INTERLOCK_POLICIES`): one policy per YAML file, each re-read when it
changes; its revision is the digest of its text, so an audited decision names the text that
made it. A broken file is refused with located problems, never skipped silently."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from interlock.config import files
from interlock.config.env import settings
from interlock.config.yamlpos import load_located
from interlock.errors import Problem, SpecError
from interlock.policies.engine import RuleError, compiled
from interlock.policies.model import Duty, Mode, Policy
from interlock.spec.namespaces import matches

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 1000


class PolicyFileError(SpecError):
    """A policy file that cannot be used; each problem is located in it."""


@dataclass(frozen=True)
class Loaded:
    policy: Policy
    revision: str
    file: str


def parse_policy(text: str, file: str) -> Loaded:
    doc = load_located(text, file)
    problems = list(doc.problems)
    policy = None
    if not problems:
        try:
            policy = Policy.model_validate(doc.value)
        except ValidationError as exc:
            problems += [doc.at(tuple(err["loc"]), f"{'.'.join(map(str, err['loc']))}: "
                                                    f"{err['msg']}") for err in exc.errors()]
    for index, rule in enumerate(policy.rules if policy else ()):
        for key in ("when", "check"):
            try:
                compiled(getattr(rule, key))
            except RuleError as exc:
                problems.append(doc.at(("rules", index, key), f"rule `{rule.name}` {key}: {exc}"))
    if problems or policy is None:
        raise PolicyFileError(problems or [Problem(file, 1, 1, "not a policy")])
    return Loaded(policy, hashlib.sha256(text.encode()).hexdigest()[:16], file)


def _read(path: Path) -> Loaded:
    return parse_policy(path.read_text(encoding="utf-8"), str(path))


def policy_files(folder: Path | None = None) -> list[Path]:
    folder = folder or settings().policies_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES)[:MAX_FILES]


def load_policies(folder: Path | None = None) -> list[Loaded]:
    """Every policy in the folder (PolicyFileError if one is broken: a control that is not
    read must not look like one that allows)."""
    return [files.cached_file(path, _read) for path in policy_files(folder)]


def covering(namespace: str, folder: Path | None = None) -> list[Loaded]:
    """The policies that hold in ``namespace``: every one whose scope covers it. A child
    namespace's own policies add rules; none can switch off a parent's."""
    return [p for p in load_policies(folder)
            if p.policy.mode is not Mode.OFF and matches(p.policy.scope, namespace)]


def waived_duties(namespace: str) -> dict[Duty, str]:
    """The duties of separation waived in ``namespace`` (each with the policy that waives
    it): named in an enforced policy's `separation.waive`, and in no covering enforced
    policy's `separation.keep`."""
    enforced = [p.policy for p in covering(namespace)
                if p.policy.mode is Mode.ENFORCE and p.policy.separation is not None]
    kept = {duty for policy in enforced for duty in policy.separation.keep}  # type: ignore[union-attr]
    waived: dict[Duty, str] = {}
    for policy in enforced:
        for duty in policy.separation.waive:  # type: ignore[union-attr]
            if duty not in kept:
                waived.setdefault(duty, policy.policy)
    return waived
