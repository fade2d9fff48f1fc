"""`interlock approvals`, `approvals show`, `approve`, `reject` and token groups: through a
real `interlock serve` with people's tokens (quorum of two groups, separation of duties, a
rejection's reason), and locally on the store with the embedded dispatcher."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from interlock.cli.main import app
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from tests.helpers import write_flow
from tests.serving import OWN, env_for, interlock, serving

NS = "tests.approvals"
PAY = f"""
id: pay
namespace: {NS}
inputs: {{amount: {{type: integer, required: true}}}}
nodes:
  screen: {{uses: noop, with: {{amount: "{{{{ inputs.amount }}}}"}}}}
  release:
    uses: noop
    needs: [screen]
    with: {{amount: "{{{{ nodes.screen.outputs.amount }}}}"}}
    approval:
      subject: "Pay {{{{ inputs.amount }}}}"
      rules: [{{group: compliance}}, {{group: risk}}]
"""
HOSTILE = ("../x", "a" * 5000)
WAIT_S = 30.0


def flat(text: str) -> str:
    """Text with Rich's line wrapping undone."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class People:
    base: str
    admin: str
    env: dict[str, str]          # the client's: another (empty) store, so all goes by the API
    tokens: dict[str, str]       # person -> token
    flow: Path

    def cli(self, who: str, *args: str) -> Result:
        """The command as ``who``, in this process (fast; the same code as `interlock`)."""
        with pytest.MonkeyPatch.context() as patch:
            for name in OWN:
                patch.delenv(name, raising=False)
            for name in (*OWN, "COLUMNS"):
                if name in self.env:
                    patch.setenv(name, self.env[name])
            patch.setenv("INTERLOCK_TOKEN", self.tokens[who])
            settings.cache_clear()
            try:
                done = CliRunner().invoke(app, list(args))
            finally:
                settings.cache_clear()
        assert not isinstance(done.exception, (AssertionError, TypeError, AttributeError)), \
            done.output
        return Result(done.exit_code, done.stdout, done.stderr)

    def real(self, who: str, *args: str) -> Result:
        """The real command line, in its own process."""
        done = interlock(*args, env={**self.env, "INTERLOCK_TOKEN": self.tokens[who]})
        return Result(done.returncode, done.stdout, done.stderr)

    def run_state(self, run_id: str) -> str:
        return str(httpx.get(f"{self.base}/api/v1/runs/{run_id}",
                             headers={"Authorization": f"Bearer {self.admin}"}).json()["state"])

    def start(self, amount: int) -> str:
        started = self.cli("starter", "run", str(self.flow), "-i", f"amount={amount}")
        assert started.returncode == 0, started.stderr
        return str(started.stdout.split()[-1])

    def request_of(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = httpx.get(f"{self.base}/api/v1/approvals", params={"run_id": run_id},
                              headers={"Authorization": f"Bearer {self.admin}"}).json()
            if found:
                return found[0]  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} asked for no approval")

    def wait_run(self, run_id: str, state: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while (now := self.run_state(run_id)) != state:
            assert time.monotonic() < deadline, f"run {run_id} is {now}, not {state}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[People]:
    root = tmp_path_factory.mktemp("approvals")
    server_env = env_for(root / "server")
    (root / "server").mkdir()
    (root / "client").mkdir()

    def make(*args: str, env: dict[str, str]) -> str:
        made = interlock("tokens", "create", "--expires", "1d", *args, env=env)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    admin = make("--name", "admin", "--role", "admin", "--namespace", "*", env=server_env)
    # Locally on the server's store, and through the API: groups go both ways.
    tokens = {"carol": make("--name", "carol", "--role", "approver", "--namespace", NS,
                            "--group", "compliance", env=server_env)}
    flow = write_flow(root, PAY, "pay.yaml")
    with serving(server_env, root / "serve.log") as base:
        client_env = env_for(root / "client", INTERLOCK_API_URL=base)
        made = People(base, admin, client_env, {**tokens, "admin": admin}, flow)
        for name, role, groups in (("rick", "approver", ("risk", "risk")),
                                   ("starter", "admin", ("compliance",))):
            # Through the API. The starter may approve (admin, in compliance), but not its own.
            created = made.cli("admin", "tokens", "create", "--name", name, "--role", role,
                               "--namespace", NS, "--expires", "1d",
                               *[a for g in groups for a in ("--group", g)])
            assert created.returncode == 0, created.stderr
            made.tokens[name] = created.stdout.strip()
        yield made


def test_two_groups_approve_through_the_api_and_the_starter_may_not(people: People) -> None:
    run_id = people.start(900)
    asked = people.request_of(run_id)
    request = asked["id"]

    mine = people.cli("carol", "approvals", "--mine", "--json")
    assert mine.returncode == 0, mine.stderr
    assert request in {r["id"] for r in json.loads(mine.stdout)}
    not_mine = people.cli("starter", "approvals", "--mine", "--json")
    assert request not in {r["id"] for r in json.loads(not_mine.stdout)}  # started the run
    table = people.cli("carol", "approvals", "--run", run_id)
    assert table.returncode == 0 and request in table.stdout and "Pay 900" in table.stdout

    shown = people.real("carol", "approvals", "show", request)
    assert shown.returncode == 0, shown.stderr
    text = flat(shown.stdout)
    for seen in ("Pay 900", f"{NS}/pay", '"amount": 900', "1 from group compliance: 1 more",
                 "excluded user:starter: started the run", "(type api, by user:starter)",
                 "(needs outputs:read)"):  # an approver sees the payload, not upstream data
        assert seen in text, text
    evidence = json.loads(people.cli("starter", "approvals", "show", request, "--json").stdout)
    assert evidence["upstream"]["screen"]["outputs"] == {"amount": 900}  # admin: outputs:read

    own = people.real("starter", "approve", request, "--comment", "looks fine to me")
    assert own.returncode == 1
    assert "user:starter started the run, so may not approve it (separation of " \
        "duties)" in flat(own.stderr)

    first = people.real("carol", "approve", request, "-m", "sanctions screening clear")
    assert first.returncode == 0, first.stderr
    assert f"voted approve on request {request}: now pending" in first.stdout
    assert "counted toward: 1 from group compliance" in first.stdout
    assert "still missing: 1 from group risk: 1 more" in flat(first.stdout)

    second = people.cli("rick", "approve", request, "-m", "within limits", "--json")
    assert second.returncode == 0, second.stderr
    outcome = json.loads(second.stdout)
    assert outcome["state"] == "approved" and outcome["option"] == "approve"
    assert outcome["counted_toward"] == ["1 from group risk"]
    people.wait_run(run_id, "succeeded")

    late = people.cli("carol", "approve", request, "-m", "again")
    assert late.returncode == 1 and "error:" in late.stderr  # decided: 409, its own sentence
    decided = json.loads(people.cli("carol", "approvals", "show", request, "--json").stdout)
    assert decided["decided_by"] == ["user:carol", "user:rick"]
    assert [v["comment"] for v in decided["votes"]] == ["sanctions screening clear",
                                                        "within limits"]


def test_whoever_starts_a_run_through_the_api_may_not_approve_it(people: People) -> None:
    source = PAY.replace("id: pay", "id: pay-by-admin")  # the starter wrote no revision
    registered = httpx.post(f"{people.base}/api/v1/flows", json={"source": source},
                            headers={"Authorization": f"Bearer {people.admin}"})
    assert registered.status_code in (200, 201), registered.text
    started = people.cli("starter", "run", f"{NS}/pay-by-admin", "-i", "amount=1")
    assert started.returncode == 0, started.stderr
    request = people.request_of(started.stdout.split()[-1])["id"]
    own = people.cli("starter", "approve", request, "-m", "mine")
    assert own.returncode == 1 and "started the run" in own.stderr


def test_reject_fails_the_run_and_its_reason_is_shown(people: People) -> None:
    run_id = people.start(50_000)
    request = people.request_of(run_id)["id"]
    bad_option = people.cli("rick", "reject", request, "-m", "x", "--option", "nope")
    assert bad_option.returncode == 2 and "not offered" in bad_option.stderr

    rejected = people.cli("rick", "reject", request, "-m", "amount above the daily limit")
    assert rejected.returncode == 0, rejected.stderr
    assert f"voted reject on request {request}: now rejected" in rejected.stdout
    people.wait_run(run_id, "failed")
    shown = people.cli("carol", "approvals", "show", request)
    assert "reject by user:rick: amount above the daily limit" in flat(shown.stdout)
    listed = json.loads(people.cli("carol", "approvals", "--state", "rejected", "--json").stdout)
    assert request in {r["id"] for r in listed}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_id_is_a_clean_error(people: People, hostile: str) -> None:
    for args in (("approvals", "show", hostile), ("approve", hostile, "-m", "x"),
                 ("reject", hostile, "-m", "x")):
        result = people.cli("carol", *args)
        assert result.returncode in (1, 2), result.stderr
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
        assert len(result.stderr) < 400


def test_token_groups_are_listed_audited_and_bounded(people: People) -> None:
    listed = people.cli("admin", "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    groups = {t["name"]: t["groups"] for t in json.loads(listed.stdout)}
    assert groups["carol"] == ["compliance"] and groups["rick"] == ["risk"]  # once
    table = people.cli("admin", "tokens", "list")
    assert "groups" in table.stdout and "compliance" in table.stdout
    exported = people.cli("admin", "audit", "export", "--target", "tokens/rick")
    (created,) = [json.loads(line) for line in exported.stdout.splitlines()]
    assert created["after"]["groups"] == ["risk"]
    headers = {"Authorization": f"Bearer {people.admin}"}
    for groups_sent in ([f"g{i}" for i in range(21)], ["x" * 101], [""]):
        refused = httpx.post(f"{people.base}/api/v1/tokens", headers=headers, json={
            "name": "too-many", "role": "viewer", "namespace": NS, "groups": groups_sent})
        assert refused.status_code == 422, refused.text


# --- locally, on the store -------------------------------------------------------------


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert not isinstance(result.exception, (AssertionError, TypeError, AttributeError)), \
        result.output
    return result


LOCAL = PAY.replace("rules: [{group: compliance}, {group: risk}]", "rules: [{role: admin}]")


@pytest.fixture
def embedded_sqlite(sqlite_store: str) -> Iterator[EmbeddedDispatcher]:
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def test_local_inbox_show_and_approve_move_the_run_on(
        embedded_sqlite: EmbeddedDispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("INTERLOCK_TOKEN", raising=False)
    flow, _ = ops.register(LOCAL, actor="user:author")
    run_id = ops.start_run(namespace=NS, flow_id=flow.id, inputs={"amount": 7},
                           dispatcher=embedded_sqlite, actor="user:starter")
    deadline = time.monotonic() + WAIT_S
    while not (rows := json.loads(invoke("approvals", "--json").stdout)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    request = rows[0]["id"]
    listed = invoke("approvals", "--mine", "--flow", f"{NS}/pay")
    assert listed.exit_code == 0 and request in listed.stdout
    shown = invoke("approvals", "show", request)
    assert shown.exit_code == 0 and "Pay 7" in shown.stdout
    assert invoke("approvals", "--flow", "pay").exit_code == 2  # not namespace/flow-id
    for hostile in HOSTILE:
        assert invoke("approvals", "show", hostile).exit_code in (1, 2)

    approved = invoke("approve", request, "-m", "ok")
    assert approved.exit_code == 0, approved.output
    assert "now approved" in approved.stdout and "every rule is met" in approved.stdout
    assert f"run {run_id}: succeeded" in approved.stdout  # waited: it runs in this process


def test_local_tokens_create_with_groups(sqlite_store: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("INTERLOCK_TOKEN", raising=False)
    made = invoke("tokens", "create", "--name", "ada", "--role", "approver", "--namespace", NS,
                  "--group", "compliance", "--group", "risk")
    assert made.exit_code == 0, made.output
    assert "groups compliance, risk" in flat(made.stderr)
    too_many = invoke("tokens", "create", "--name", "bob", "--role", "approver",
                      "--namespace", NS, *[a for i in range(21) for a in ("--group", f"g{i}")])
    assert too_many.exit_code == 2 and "at most 20" in too_many.stderr
    bad = invoke("tokens", "create", "--name", "eve", "--role", "approver", "--namespace", NS,
                 "--group", "no spaces")
    assert bad.exit_code == 2
    (info,) = json.loads(invoke("tokens", "list", "--json").stdout)
    assert info["groups"] == ["compliance", "risk"]
