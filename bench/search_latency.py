"""Search latency at scale: ``search_messages`` on one user's history in a database of many users.

Builds (once, then cached under ``bench/.cache/``) a SQLite database through the real schema with
1,000 agents and N messages of synthetic chat text (Zipf-distributed words, sessions of 12
turns, every agent's history interleaved with everyone else's as in a busy bot), bulk-inserted;
then times ``SQLiteStorage.search_messages`` (the function behind ``conversation_search``) on one
random agent's history at a time, with 1-word and 5-word queries made of words that agent wrote:
median and p95 (after 20 warm-up searches, with the file in the OS page cache). Prints a table
and writes JSON to ``bench/results/``.

Run from the repository root:
    python bench/search_latency.py                       # 100k messages
    python bench/search_latency.py --messages 1000000    # the full size
    python bench/search_latency.py --smoke               # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.messages import Role
from agentcore.storage.base import message_terms
from agentcore.storage.migrate import load_migrations
from agentcore.storage.sqlite import SQLiteStorage

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
GENERATOR_VERSION = 2  # bump when the synthetic data changes, so cached databases are rebuilt
START_MS = 1_672_531_200_000  # 2023-01-01 UTC
SESSION_TURNS = 12  # turns per session; sessions of one agent are about a day apart
WARM_UP = 20  # searches run before timing starts (page cache, statement cache)

# Everyday chat words (most frequent first); a long tail of rarer made-up words follows them.
COMMON = """
i you the a to and it is that my was so of in for me have just what but with this on be
are do not your like it's i'm we that's too really can all about get how yeah if going at
had good know one did out there today time think day love go got want now great up some
oh new they when work more were been would lol thanks back see week much thing still also
feel make sure last well need from by as or here an weekend fun nice friends first night
family kids home trip happy right always pretty went yesterday tomorrow work job team game
book movie music dog cat coffee dinner lunch breakfast school class project idea plan help
try hope amazing awesome hard tired busy long little big old best next place city beach park
walk run gym yoga hike camping travel car house room garden cook recipe cake pizza party
birthday wedding sister brother mom dad friend boss meeting call email phone photo picture
paint painting draw art guitar piano song concert show series season episode read write
story novel poem class course exam study learn teach lesson volunteer shelter charity event
""".split()  # noqa: SIM905 (a word list reads better as text)
SYLLABLES = "ka lo mi ra ne to su vi de ba po ri ta ge mo la fi nu se co".split()  # noqa: SIM905


@dataclass(frozen=True)
class Figures:
    query_words: int
    queries: int
    median_ms: float
    p95_ms: float
    found: float  # share of queries with at least one hit (each is made of words the agent wrote)


# --------------------------------------------------------------------- synthetic data


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """The common words, then made-up words of two to four syllables, to ``size`` words."""
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Chatter:
    """Synthetic chat lines with word frequencies that fall off like a real language's (Zipf)."""

    def __init__(self, seed: int, size: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(size, random.Random(size))  # the same words for every seed
        self.cumulative = list(itertools.accumulate(1.0 / (r + 1) for r in range(size)))

    def line(self) -> str:
        count = max(3, min(40, int(self.rng.lognormvariate(2.6, 0.5))))
        picked = self.rng.choices(self.words, cum_weights=self.cumulative, k=count)
        return " ".join(picked).capitalize() + self.rng.choice((".", "!", "?", ""))

    def query(self, words: int) -> str:
        """A query of mid-frequency words (the kind worth searching for)."""
        return " ".join(self.rng.choice(self.words[50:5000]) for _ in range(words))


def session_rows(
    agents: int, messages: int, sessions: range, seed: int
) -> list[tuple[object, ...]]:
    """The rows of some sessions, in time order: within a session slot every agent has one
    session, so histories interleave as they do when many people chat at once."""
    chatter = Chatter(seed * 1_000_003 + sessions.start)
    per_agent = messages // agents
    rows: list[tuple[object, ...]] = []
    for session in sessions:
        turns = min(SESSION_TURNS, per_agent - session * SESSION_TURNS)
        for agent in range(agents):
            base = START_MS + session * 86_400_000 + agent * 60_000
            for turn in range(turns):
                role = Role.USER if turn % 2 == 0 else Role.ASSISTANT
                text = chatter.line()
                seq = session * SESSION_TURNS + turn
                rows.append(
                    (
                        agent + 1,
                        role.value,
                        text,
                        base + turn * 30_000,
                        message_terms(role, text),
                        seq,
                    )
                )
    return rows


def _chunk(job: tuple[int, int, range, int]) -> list[tuple[object, ...]]:
    return session_rows(*job)


def all_rows(agents: int, messages: int, seed: int, workers: int) -> Iterator[tuple[object, ...]]:
    """Every row; with ``workers``, generated by worker processes while the caller inserts."""
    slots = math.ceil(messages // agents / SESSION_TURNS)
    jobs = [(agents, messages, range(s, min(s + 4, slots)), seed) for s in range(0, slots, 4)]
    if not workers:
        for job in jobs:
            yield from _chunk(job)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for rows in pool.imap(_chunk, jobs):
            yield from rows


def build(
    path: Path, agents: int, messages: int, seed: int = 7, workers: int | None = None
) -> None:
    """Create the schema through the storage layer, then bulk-insert everything in one go
    (rows generated by ``workers`` processes: by default all cores but the inserting one)."""
    if workers is None:
        workers = max(1, (os.cpu_count() or 2) - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for stale in (partial, Path(str(partial) + "-wal"), Path(str(partial) + "-shm")):
        stale.unlink(missing_ok=True)
    asyncio.run(_create_schema(partial))
    db = sqlite3.connect(partial, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")  # 256 MB while loading
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO agents (id, platform, user_id, display_name, created_at) "
        "VALUES (?, 'bench', ?, ?, ?)",
        [(a, f"user{a}", f"User {a}", START_MS) for a in range(1, agents + 1)],
    )
    db.executemany(
        "INSERT INTO messages (agent_id, role, content, created_at, terms, seq) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        all_rows(agents, messages, seed, workers),
    )
    db.execute(
        "UPDATE agents SET message_count = c.n, search_docs = c.n, search_terms = c.t FROM "
        "(SELECT agent_id, count(*) AS n, "
        "sum(length(terms) - length(replace(terms, ' ', '')) + 1) AS t "
        "FROM messages GROUP BY agent_id) AS c WHERE c.agent_id = agents.id"
    )
    db.execute("COMMIT")
    db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    partial.rename(path)


async def _create_schema(path: Path) -> None:
    storage = await SQLiteStorage.open(path)
    await storage.close()


def database(messages: int, agents: int) -> tuple[Path, float | None]:
    """The cached database for this size, built if missing; and the build time if built."""
    schema = hashlib.sha256("".join(s for m in load_migrations() for s in m.statements).encode())
    name = f"search-{agents}a-{messages}m-g{GENERATOR_VERSION}-{schema.hexdigest()[:10]}.db"
    path = CACHE / name
    if path.exists():
        return path, None
    started = time.perf_counter()
    build(path, agents, messages)
    return path, time.perf_counter() - started


# --------------------------------------------------------------------- measuring


async def measure(path: Path, agents: int, queries: int, words: int, seed: int) -> Figures:
    """Time ``queries`` searches of ``words`` words, each for a random agent, built from words
    that agent really wrote (a search for something said), after a short warm-up."""
    rng = random.Random(seed)
    asks = _queries(path, agents, queries + WARM_UP, words, rng)
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
    timings.sort()
    p95 = timings[min(len(timings), math.ceil(0.95 * len(timings))) - 1]
    return Figures(words, len(timings), statistics.median(timings), p95, found / len(timings))


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


def run(messages: int, agents: int, queries: int) -> dict[str, object]:
    path, build_s = database(messages, agents)
    figures = [asyncio.run(measure(path, agents, queries, w, seed=100 + w)) for w in (1, 5)]
    return {
        "benchmark": "search_latency",
        "messages": messages,
        "agents": agents,
        "database_mb": round(path.stat().st_size / 1e6, 1),
        "build_s": None if build_s is None else round(build_s, 1),
        "machine": {
            "cores": _cores(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "results": [asdict(f) for f in figures],
    }


def _cores() -> int:
    return os.cpu_count() or 1


def table(report: dict[str, object]) -> str:
    results = report["results"]
    assert isinstance(results, list)
    lines = [
        f"search_messages latency, one agent's history: {report['messages']:,} messages, "
        f"{report['agents']:,} agents, {report['database_mb']} MB"
        + (f", built in {report['build_s']} s" if report["build_s"] is not None else " (cached)"),
        f"{'query':<10}{'queries':>9}{'median ms':>11}{'p95 ms':>9}{'found':>8}",
    ]
    for r in results:
        lines.append(
            f"{str(r['query_words']) + ' word(s)':<10}{r['queries']:>9}"
            f"{r['median_ms']:>11.2f}{r['p95_ms']:>9.2f}{100 * r['found']:>7.0f}%"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=300, help="per query length")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.messages, args.agents, args.queries = 5_000, 50, 40
    report = run(args.messages, args.agents, args.queries)
    print(table(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"search_latency-{args.messages}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
