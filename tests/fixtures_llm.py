"""Pytest fixtures for a real local language model (registered from conftest.py via
pytest_plugins).

``llm_server`` (session): one llama.cpp server with SmolLM2-135M-Instruct on loopback
(``llm_harness``), shared by every test that only sends it requests.
``llm_server_private`` (function): a server of the test's own, for tests that kill or stop it.
``llm_venv`` (session): the cached virtualenv, for tests that start servers themselves.
Set ``INTERLOCK_SKIP_LLM=1`` to skip the tests that need one; any other problem (the install,
the model not loading) fails loudly with the tail of the server's log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_harness import LlmServer, ensure_llm_venv


@pytest.fixture(scope="session")
def llm_venv() -> Path:
    """The cached virtualenv with xllamacpp and the model (installed on first use)."""
    if os.environ.get("INTERLOCK_SKIP_LLM") == "1":
        pytest.skip("INTERLOCK_SKIP_LLM=1")
    return ensure_llm_venv()


def _serve(log_dir: Path, venv: Path) -> Iterator[LlmServer]:
    server = LlmServer(log_dir, venv)
    # stop() is also registered with atexit by start(), for interrupted sessions.
    try:
        server.start()
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory, llm_venv: Path) -> Iterator[LlmServer]:
    yield from _serve(tmp_path_factory.mktemp("llm-server"), llm_venv)


@pytest.fixture
def llm_server_private(tmp_path: Path, llm_venv: Path) -> Iterator[LlmServer]:
    yield from _serve(tmp_path, llm_venv)
