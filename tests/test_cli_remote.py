"""The real `interlock` command against a real `interlock serve` with a token: with
INTERLOCK_API_URL + INTERLOCK_TOKEN set, commands go through the API (the CLI's own store
is a different, empty one, and stays untouched) with the same output and exit codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.api.security import UNAUTHENTICATED
from tests.helpers import write_flow
from tests.serving import env_for, interlock, serving

GREET = """
id: greet
namespace: tests.remote
inputs:
  who: {type: string, required: true}
  times: {type: integer, default: 1}
nodes:
  hello:
    uses: script
    with:
      command: "echo hello {{ inputs.who }} x{{ inputs.times }}; echo n={{ inputs.times }} >
        $INTERLOCK_OUTPUT"
"""
FAILING = """
id: failing
namespace: tests.remote
nodes:
  boom: {uses: script, with: {command: ["false"]}}
"""
SLOW = """
id: slow
namespace: tests.remote
nodes:
  wait: {uses: script, with: {command: ["sleep", "30"]}, timeout: 2m}
"""
WRONG = "ilk_ABCDEFGH_" + "x" * 43  # the right shape, never issued


@dataclass
class Remote:
    base: str
    token: str
    server_env: dict[str, str]   # local commands on the server's own store
    client_env: dict[str, str]   # remote commands: the token, and another (empty) store
    client_home: Path
    flows: Path

    def cli(self, *args: str, **extra: str) -> Any:
        return interlock(*args, env={**self.client_env, **extra})

    def local(self, *args: str) -> Any:
        return interlock(*args, env=self.server_env)

    def state(self, run_id: str) -> str:
        return str(httpx.get(f"{self.base}/api/v1/runs/{run_id}",
                             headers={"Authorization": f"Bearer {self.token}"}).json()["state"])


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    root = tmp_path_factory.mktemp("remote")
    (root / "server").mkdir()
    (root / "client").mkdir()
    server_env = env_for(root / "server")
    made = interlock("tokens", "create", "--name", "remote-cli", "--role", "admin",
                     "--namespace", "*", "--expires", "1d", env=server_env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ilk_") and "\n" not in token  # stdout holds the token alone
    flows = root / "flows"
    flows.mkdir()
    for name, text in (("greet", GREET), ("failing", FAILING), ("slow", SLOW)):
        write_flow(flows, text, f"{name}.yaml")
    with serving(server_env, root / "serve.log") as base:
        client_env = env_for(root / "client", INTERLOCK_API_URL=base, INTERLOCK_TOKEN=token)
        yield Remote(base, token, server_env, client_env, root / "client", flows)


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


def test_run_file_wait_succeeds_through_the_api(remote: Remote) -> None:
    shown = remote.cli("run", str(remote.flows / "greet.yaml"), "-i", "who=ada", "--wait")
    assert shown.returncode == 0, shown.stderr
    assert "succeeded" in shown.stdout and "tests.remote/greet" in shown.stdout
    result = remote.cli("run", str(remote.flows / "greet.yaml"), "-i", "who=bob",
                        "-i", "times=2", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    detail = _json(result)
    assert detail["state"] == "succeeded"
    assert detail["inputs"] == {"who": "bob", "times": 2}  # parsed to the declared integer
    assert detail["nodes"][0]["outputs"] == {"n": 2}
    assert detail["trigger"]["type"] == "api"  # started by the server, not in this process


def test_run_by_reference_without_wait_prints_its_id(remote: Remote) -> None:
    assert remote.cli("run", str(remote.flows / "greet.yaml"), "-i", "who=x",
                      "--wait").returncode == 0  # registers it
    started = remote.cli("run", "tests.remote/greet", "-i", "who=ref", "--json")
    assert started.returncode == 0, started.stderr
    run_id = _json(started)["id"]
    deadline = time.monotonic() + 30
    while remote.state(run_id) != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_failing_run_exits_1_and_retry_goes_through_the_api(remote: Remote) -> None:
    result = remote.cli("run", str(remote.flows / "failing.yaml"), "--wait", "--json")
    assert result.returncode == 1, result.stderr
    run_id = _json(result)["id"]
    assert _json(result)["state"] == "failed"
    again = remote.cli("retry", run_id, "--wait")
    assert again.returncode == 1
    assert f"retrying boom of run {run_id}" in again.stderr


def test_status_logs_and_runs_match_the_local_command(remote: Remote) -> None:
    result = remote.cli("run", str(remote.flows / "greet.yaml"), "-i", "who=eve", "--wait",
                        "--json")
    run_id = _json(result)["id"]
    status = remote.cli("status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    local = remote.local("status", run_id, "--json")
    assert local.returncode == 0, local.stderr
    assert _json(status) == _json(local)
    assert status.stdout == local.stdout
    table = remote.cli("status", run_id)
    assert table.returncode == 0 and "succeeded" in table.stdout
    logs = remote.cli("logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert "hello eve x1" in logs.stdout and "hello (attempt 1)" in logs.stdout
    assert remote.cli("logs", run_id, "--json").stdout == remote.local("logs", run_id,
                                                                       "--json").stdout
    assert remote.cli("trace", run_id, "--json").stdout == remote.local("trace", run_id,
                                                                        "--json").stdout
    listed = remote.cli("runs", "--json", "--flow", "tests.remote/greet")
    assert listed.returncode == 0 and run_id in {r["id"] for r in _json(listed)["runs"]}


def test_cancel_a_running_run(remote: Remote) -> None:
    started = remote.cli("run", str(remote.flows / "slow.yaml"))
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[-1]
    assert started.stdout.startswith("started run ")
    deadline = time.monotonic() + 30
    while remote.state(run_id) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cancelled = remote.cli("cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancel requested for run {run_id}" in cancelled.stdout
    while remote.state(run_id) != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    again = remote.cli("cancel", run_id)
    assert again.returncode == 1 and "only pending or running runs" in again.stderr


def test_audit_verify_through_the_api(remote: Remote) -> None:
    result = remote.cli("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert _json(remote.cli("audit", "verify", "--json")) == \
        _json(remote.local("audit", "verify", "--json"))
    exported = remote.cli("audit", "export", "--target", "runs/*")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout and exported.stdout == remote.local("audit", "export", "--target",
                                                               "runs/*").stdout


def test_bad_input_exits_2_and_unknown_run_exits_1(remote: Remote, tmp_path: Path) -> None:
    wrong_input = remote.cli("run", str(remote.flows / "greet.yaml"), "-i", "who=x",
                             "-i", "times=many")
    assert wrong_input.returncode == 2
    assert "input `times`: expected integer, got str 'many'" in " ".join(
        wrong_input.stderr.split())
    bad = write_flow(tmp_path, "id: bad\nnamespace: tests.remote\nnodes: {a: {uses: nope}}\n",
                     "bad.yaml")
    invalid = remote.cli("run", str(bad))
    assert invalid.returncode == 2
    assert f"{bad}:3:" in invalid.stderr and "nope" in invalid.stderr  # located, as locally
    unknown = remote.cli("status", "nope")
    assert unknown.returncode == 1
    assert "run `nope` does not exist" in unknown.stderr
    assert remote.cli("logs", "nope").returncode == 1


@pytest.mark.parametrize("token", [WRONG, "not-even-a-token-s3cr3t"])
def test_a_wrong_token_exits_1_with_one_sentence(remote: Remote, token: str) -> None:
    result = remote.cli("runs", INTERLOCK_TOKEN=token)
    assert result.returncode == 1
    assert result.stdout == ""
    assert " ".join(result.stderr.split()) == f"error: {UNAUTHENTICATED}"
    assert token not in result.stderr and "s3cr3t" not in result.stderr


def test_a_role_without_the_permission_gets_the_apis_sentence(remote: Remote) -> None:
    made = remote.cli("tokens", "create", "--name", "viewer-remote", "--role", "viewer",
                      "--namespace", "tests.remote")
    assert made.returncode == 0, made.stderr
    viewer = made.stdout.strip()
    result = remote.cli("audit", "verify", INTERLOCK_TOKEN=viewer)
    assert result.returncode == 1
    assert "lacks `audit:read`" in result.stderr and viewer not in result.stderr


def test_tokens_through_the_api(remote: Remote) -> None:
    made = remote.cli("tokens", "create", "--name", "ci-bot", "--role", "launcher",
                      "--namespace", "tests.*", "--service", "--json")
    assert made.returncode == 0, made.stderr
    created = _json(made)
    assert created["kind"] == "service" and created["role"] == "launcher"
    assert created["token"].startswith(f"ilk_{created['prefix']}_")
    listed = remote.cli("tokens", "list", "--json")
    assert listed.returncode == 0
    names = {t["name"]: t for t in _json(listed)}
    assert {"remote-cli", "ci-bot"} <= set(names)
    assert created["token"] not in listed.stdout and remote.token not in listed.stdout
    revoked = remote.cli("tokens", "revoke", "ci-bot")
    assert revoked.returncode == 0 and "revoked token ci-bot" in revoked.stdout
    ci = remote.cli("runs", INTERLOCK_TOKEN=created["token"])
    assert ci.returncode == 1 and UNAUTHENTICATED in " ".join(ci.stderr.split())
    duplicate = remote.cli("tokens", "create", "--name", "remote-cli", "--role", "viewer",
                           "--namespace", "*")
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr


def test_nothing_went_to_the_clients_own_store(remote: Remote) -> None:
    test_run_file_wait_succeeds_through_the_api(remote)
    assert not (remote.client_home / "interlock.db").exists()
    for result in (remote.cli("runs"), remote.cli("tokens", "list")):
        assert remote.token not in result.stdout + result.stderr
