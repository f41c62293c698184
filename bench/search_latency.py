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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from bench import pg
from bench.common import percentile, print_table, write_json
from bench.dataset import build_seconds, history_db

WARM_UP = 20  # searches run before timing starts (page cache, statement cache)


@dataclass(frozen=True)
class Figures:
    query_words: int
    queries: int
    median_ms: float
    p95_ms: float
    found: float  # share of queries with at least one hit (each is made of words the agent wrote)


# --------------------------------------------------------------------- measuring


async def measure(
    path: Path, agents: int, queries: int, words: int, seed: int, postgres_url: str | None
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


def run(messages: int, agents: int, queries: int, backend: str) -> dict[str, Any]:
    path = history_db(messages, agents)
    with contextlib.ExitStack() as stack:
        url = None
        if backend == "postgres":
            url = pg.history_database(stack.enter_context(pg.bench_server()), path)
        figures = [
            asyncio.run(measure(path, agents, queries, w, seed=100 + w, postgres_url=url))
            for w in (1, 5)
        ]
    return {
        "backend": backend,
        "messages": messages,
        "agents": agents,
        "database_mb": round(path.stat().st_size / 1e6, 1),
        "build_s": build_seconds(path),
        "results": [asdict(f) for f in figures],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=300, help="per query length")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.messages, args.agents, args.queries = 5_000, 50, 40
    r = run(args.messages, args.agents, args.queries, args.backend)
    built = f"built in {r['build_s']} s" if r["build_s"] is not None else "cached"
    print_table(
        f"search_messages latency ({args.backend}), one agent's history: "
        f"{r['messages']:,} messages, {r['agents']:,} agents, {r['database_mb']} MB ({built})",
        ["query", "queries", "median ms", "p95 ms", "found"],
        [
            [
                f"{f['query_words']} word(s)",
                f["queries"],
                f["median_ms"],
                f["p95_ms"],
                f"{f['found']:.0%}",
            ]
            for f in r["results"]
        ],
    )
    name = f"search_latency-{args.messages}"
    if args.backend != "sqlite":
        name = f"search_latency_{args.backend}-{args.messages}"
    print(f"wrote {write_json(name, r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
