"""The Dockerfile's promises, read from the file (no Docker engine here): a non-editable
install, a non-root user from the installs on, and a liveness check on /healthz."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

Instruction = tuple[str, str]  # (KEYWORD, its arguments with continuations joined)


def parse(text: str) -> list[Instruction]:
    """The Dockerfile's instructions in order: comments dropped, `\\` continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile() -> list[Instruction]:
    return parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def index_of(instructions: list[Instruction], keyword: str, last: bool = False) -> int:
    found = [i for i, (k, _) in enumerate(instructions) if k == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1] if last else found[0]


def pip_installs(instructions: list[Instruction]) -> list[str]:
    pip = re.compile(r"\bpip\b.*\binstall\b")
    return [args for k, args in instructions if k == "RUN" and pip.search(args)]


def test_parse_joins_continuations_and_drops_comments() -> None:
    parsed = parse("FROM x\n# note\nRUN a \\\n    && b\nUSER app\n")
    assert parsed == [("FROM", "x"), ("RUN", "a && b"), ("USER", "app")]


def test_the_package_is_installed_non_editable_with_postgres() -> None:
    installs = pip_installs(dockerfile())
    assert installs, "the Dockerfile installs nothing with pip"
    for args in installs:
        words = shlex.split(args)
        assert "-e" not in words and "--editable" not in words, f"editable install: {args}"
    assert any('.[postgres]' in shlex.split(args) for args in installs), installs


def test_a_non_root_user_runs_the_command_after_the_installs() -> None:
    instructions = dockerfile()
    user_at = index_of(instructions, "USER", last=True)
    user = instructions[user_at][1].split(":")[0]
    assert user not in {"root", "0"}, f"the image runs as {user}"
    last_run = max(i for i, (k, _) in enumerate(instructions) if k == "RUN")
    assert last_run < user_at < index_of(instructions, "CMD", last=True), (
        "USER must come after every RUN (installs as root) and before CMD")
    # The user is created as a system user, and owns INTERLOCK_HOME.
    runs = " ".join(args for k, args in instructions if k == "RUN")
    assert re.search(rf"useradd\b[^&]*--system[^&]*\b{user}\b", runs), "no system user created"
    home = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for k, a in instructions if k == "ENV")))
    assert home.get("INTERLOCK_HOME"), "the image sets no INTERLOCK_HOME"
    assert re.search(rf"chown\s+{user}(:\w+)?\s+{re.escape(home['INTERLOCK_HOME'])}", runs)


def test_the_healthcheck_asks_healthz_and_the_command_serves() -> None:
    instructions = dockerfile()
    check = instructions[index_of(instructions, "HEALTHCHECK")][1]
    assert "/healthz" in check and "CMD" in check
    assert re.search(r"--timeout=\d+s", check), "a health check without a timeout can hang"
    cmd = instructions[index_of(instructions, "CMD", last=True)][1]
    assert cmd.startswith('["interlock", "serve"'), cmd


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".interlock"} <= set(ignored)
