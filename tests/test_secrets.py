"""Secrets as references: `{{ secret('NAME') }}` resolves only in the worker at submit, and
its value, in any encoding, lands in no table, no attempt file, no API answer, no audit."""

from __future__ import annotations

import base64
import html
import json
import os
import sys
import warnings
from pathlib import Path
from textwrap import dedent
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import create_engine, inspect, select, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run, write_flow

from interlock.adapters.masking import MASK, Masker, StreamMasker
from interlock.api.main import create_app
from interlock.audit.query import AuditFilter, export_lines
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import runs as ops
from interlock.secrets.backends import EnvBackend, FileBackend, SecretNotFound
from interlock.spec.loader import parse_flow
from interlock.states import NodeState, RunState

SECRET_VAR = "ILK_TEST_TOKEN"
# Characters that change under base64, percent-encoding and JSON escaping alike.
SECRET = 'Sup3r"Secr/t+&=?\\ x'


def encodings(value: str) -> list[str]:
    """The forms a leak could take, computed here independently of the masker."""
    raw = value.encode()
    found = [value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1],
             base64.b64encode(raw).decode().rstrip("="),
             base64.urlsafe_b64encode(raw).decode().rstrip("="),
             html.escape(value), html.escape(value, quote=False)]
    return found


# --- the masker --------------------------------------------------------------------------

def test_every_encoded_form_is_masked() -> None:
    mask = Masker([SECRET])
    for form in encodings(SECRET):
        assert mask.text(f"before {form} after") == f"before {MASK} after", form
    assert mask.deep({"k": [SECRET, 1], SECRET: None}) == {"k": [MASK, 1], MASK: None}
    assert Masker(["abc"]).text("abc") == "abc"  # too short to mask without noise
    assert not Masker([])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_a_stream_cut_anywhere_never_shows_a_secret(size: int) -> None:
    stream = StreamMasker(Masker([SECRET]))
    data = (f"a {SECRET} b " + base64.b64encode(SECRET.encode()).decode() + " c\n").encode()
    out = b"".join(stream.feed(data[i:i + size]) for i in range(0, len(data), size))
    out += stream.flush()
    assert out == b"a *** b *** c\n"


# --- the backends ------------------------------------------------------------------------

def test_the_env_backend_names_the_variable_and_keeps_interlock_settings() -> None:
    source = EnvBackend({"TOKEN": "v", "INTERLOCK_DATABASE_URL": "postgresql://u:pw@h/db"})
    assert source.get("TOKEN") == "v"
    with pytest.raises(SecretNotFound, match="set the environment variable MISSING"):
        source.get("MISSING")
    with pytest.raises(SecretNotFound, match="Interlock's own settings"):
        source.get("INTERLOCK_DATABASE_URL")


def test_the_file_backend_stays_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "db-password").write_text("pw-from-file\n")
    (tmp_path / "outside").write_text("not a secret of ours")
    (folder / "link").symlink_to(tmp_path / "outside")
    source = FileBackend(folder)
    assert source.get("db-password") == "pw-from-file"
    for name in ("../outside", "/etc/passwd", ".hidden", "a/b", "x\0y"):
        with pytest.raises(SecretNotFound, match="file names"):
            source.get(name)
    with pytest.raises(SecretNotFound, match="leads outside"):
        source.get("link")
    with pytest.raises(SecretNotFound, match="not found in"):
        source.get("absent")


# --- where a reference may stand --------------------------------------------------------

@pytest.mark.parametrize(("with_", "message"), [
    ("{command: \"curl -u me:{{ secret('T') }} x\"}", "whole value"),
    ("{command: \"{{ secret('T') }}\"}", "cannot be part of `command`"),
    ("{command: [echo, \"{{ secret('T') }}\"]}", "cannot be part of `command`"),
    ("{env: {A: \"Bearer {{ secret('T') }}\"}, command: [\"true\"]}", "whole value"),
    ("{env: {A: \"{{ secret('T') | upper }}\"}, command: [\"true\"]}", "whole value"),
])
def test_a_secret_must_be_a_whole_value_outside_command_lines(with_: str, message: str) -> None:
    source = f"id: s\nnamespace: tests.secrets\nnodes:\n  a:\n    uses: script\n    with: {with_}\n"
    with pytest.raises(SpecError) as caught:
        parse_flow(source, "s.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 6 and message in problem.message, problem.message


def test_a_secret_in_a_condition_is_refused() -> None:
    source = dedent("""
        id: s
        namespace: tests.secrets
        nodes:
          a: {uses: noop, if: "secret('T') == 'x'"}
    """).lstrip()
    with pytest.raises(SpecError, match="must be the whole value"):
        parse_flow(source, "s.yaml")


# --- end to end: nothing keeps the value ------------------------------------------------

FLOW = """
id: secrets
namespace: tests.secrets
inputs: {{spelled: {{type: string, default: "x"}}}}
nodes:
  leaky:
    uses: script
    with:
      command: ["{python}", "-c", "{program}"]
      env: {{TOKEN: "{{{{ secret('{var}') }}}}", SPELLED: "{{{{ inputs.spelled }}}}"}}
  in_variables:
    uses: rpa
    with:
      robot: {robot}
      variables: {{TOKEN: "{{{{ secret('{var}') }}}}"}}
  robot:
    uses: rpa
    with:
      robot: {robot}
      env: {{TOKEN: "{{{{ secret('{var}') }}}}"}}
  missing:
    uses: script
    with:
      command: ["true"]
      env: {{TOKEN: "{{{{ secret('ILK_TEST_ABSENT') }}}}"}}
"""

# Prints the secret raw, base64, percent- and JSON-encoded, to stdout, stderr and the
# outputs file, raises with it in the message, and echoes the input that spells a reference.
PROGRAM = ("import base64,json,os,sys,urllib.parse as u; t=os.environ['TOKEN']; "
           "print('raw', t); print('b64', base64.b64encode(t.encode()).decode()); "
           "print('url', u.quote(t, safe='')); print('json', json.dumps(t)); "
           "print('spelled', os.environ['SPELLED']); "
           "open(os.environ['INTERLOCK_OUTPUT'], 'a').write('leak=' + t + '\\n'); "
           "sys.stderr.write('stderr ' + t + '\\n'); raise SystemExit('failed with ' + t)")

ROBOT = """\
*** Tasks ***
Log The Token
    Log    token is %{TOKEN}
    Log To Console    console %{TOKEN}
    Fail    robot failed with %{TOKEN}
"""


def test_a_secret_reaches_the_process_and_nothing_keeps_it(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        store_url: str) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leak.robot").write_text(ROBOT)
    program = PROGRAM.replace("\\", "\\\\").replace('"', '\\"')  # inside a YAML "string"
    source = FLOW.format(python=sys.executable, program=program, var=SECRET_VAR,
                         robot="leak.robot")
    flow, _ = ops.register(write_flow(tmp_path, source).read_text())
    spelled = "{{ secret('" + SECRET_VAR + "') }}"  # an input cannot ask for a secret
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                           inputs={"spelled": spelled}, dispatcher=embedded)
    detail = wait_run(run_id)
    nodes = {n.id: n for n in detail.nodes}
    assert detail.state is RunState.FAILED
    assert nodes["leaky"].state is NodeState.FAILED
    assert "may only" not in (nodes["leaky"].error or "")
    assert "only be an `env:` value" in (nodes["in_variables"].error or "")
    assert "ILK_TEST_ABSENT" in (nodes["missing"].error or "")
    assert nodes["robot"].state is NodeState.FAILED

    with TestClient(create_app(dispatcher=embedded)) as client:
        client.headers.update(bearer())
        answers = [client.get(f"/api/v1/runs/{run_id}{path}") for path in ("", "/events", "/trace")]
        answers.append(client.get("/api/v1/audit/export"))
        logs = {n: client.get(f"/api/v1/runs/{run_id}/nodes/{n}/logs") for n in ("leaky", "robot")}
    assert [a.status_code for a in [*answers, *logs.values()]] == [200] * 6
    leaky_log = logs["leaky"].json()["text"]
    # The process saw the value (each form masked, in order), and the spelled reference
    # stayed the literal text it was.
    assert 'raw ***\nb64 ***\nurl ***\njson "***"\n' in leaky_log
    assert f"spelled {spelled}" in leaky_log
    assert "console ***" in logs["robot"].json()["text"]

    haystacks = {"api": "\n".join([a.text for a in answers] + [r.text for r in logs.values()]),
                 "audit": "\n".join(export_lines(AuditFilter())),
                 "store": _every_text_in_the_store(store_url)}
    for where, text_ in haystacks.items():
        for form in encodings(SECRET):
            assert form not in text_, f"{form!r} found in {where}"
    files = [p for p in settings().home.rglob("*") if p.is_file() and p.suffix != ".db"]
    assert any(p.name == "output.xml" for p in files) and any(p.name == "log" for p in files)
    for path in files:
        data = path.read_bytes()
        for form in encodings(SECRET):
            assert form.encode() not in data, f"{form!r} found in {path}"
    assert "*** Tasks ***" in (tmp_path / "leak.robot").read_text()  # sanity: files are read


def _every_text_in_the_store(url: str) -> str:
    """Every row of every table, as text: what a database dump would hold."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if url.startswith("postgresql"):
                conn.execute(text("SELECT 1"))
            names = inspect(conn).get_table_names()
            meta_rows = []
            from sqlalchemy import MetaData, Table
            meta = MetaData()
            for name in names:
                table = Table(name, meta, autoload_with=conn)
                meta_rows += [json.dumps(list(row), default=str)
                              for row in conn.execute(select(table))]
            return "\n".join(meta_rows)
    finally:
        engine.dispose()


def test_inherit_env_may_not_copy_a_system_secret(embedded: EmbeddedDispatcher, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          airflow/prod:
            url: http://127.0.0.1:9
            auth: {username: interlock, password: {env: AIRFLOW_PROD_PASSWORD}}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("AIRFLOW_PROD_PASSWORD", "airflow-prod-pw-123")
    settings.cache_clear()
    monkeypatch.chdir(tmp_path)
    source = dedent("""
        id: inherit
        namespace: tests.secrets
        nodes:
          a:
            uses: script
            with: {command: ["sh", "-c", "echo $AIRFLOW_PROD_PASSWORD"],
                   inherit_env: [HOME, AIRFLOW_PROD_PASSWORD]}
    """)
    flow, _ = ops.register(source)
    detail = wait_run(ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                                    dispatcher=embedded))
    (node,) = detail.nodes
    assert node.state is NodeState.FAILED
    assert "AIRFLOW_PROD_PASSWORD, which the systems file uses as a secret" in (node.error or "")
    assert "airflow-prod-pw-123" not in json.dumps(detail.model_dump(mode="json"))
    assert os.environ["AIRFLOW_PROD_PASSWORD"]  # it was there to be copied
