"""Synthetic chat histories for the benchmarks, bulk-inserted and cached between runs.

``history_db(messages, users)`` returns a SQLite file (schema from the real migrations) holding
``messages`` rows spread evenly over ``users`` agents, interleaved in time the way a live bot
would write them, each agent with a context window of its last ~20 messages and a summary, as if
it had been folded many times. The cache key includes the migrations, so a schema change
rebuilds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from agentcore.storage.sqlite import SQLiteStorage
from bench.common import CACHE

PLATFORM = "bench"
START_MS = 1_700_000_000_000
STEP_MS = 90_000  # a message every 1.5 minutes across the whole bot
BATCH = 20_000
IN_CONTEXT = 20
COMMON = (
    "i you the a to and it is was that my of in for on with have this just so but we are be "
    "what like do not know they me at about think really good going get one yeah all can how "
    "out when time your there if up would people go want now did day more much also see"
).split()
TOPICS = (
    "hiking camping guitar piano painting pottery running marathon yoga climbing bouldering "
    "sailing surfing chess soccer basketball tennis cooking baking sourdough garden tomatoes "
    "roses puppy kitten parrot adoption daughter son sister brother grandmother wedding "
    "birthday vacation paris tokyo lisbon berlin concert festival museum library novel poetry "
    "startup promotion interview salary mortgage apartment moving therapy meditation volunteer "
    "charity shelter recipe allergy doctor dentist exam thesis graduation scholarship"
).split()


def _schema_key() -> str:
    folder = resources.files("agentcore.storage").joinpath("migrations")
    digest = hashlib.sha256()
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:10]


def history_db(messages: int, users: int) -> Path:
    """The cached database for this size, building it first if needed."""
    path = CACHE / f"history-{messages}-{users}-{_schema_key()}.db"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        for leftover in CACHE.glob(partial.name + "*"):
            leftover.unlink()
        build(partial, messages, users)
        partial.rename(path)
        seconds = time.perf_counter() - started
        build_info(path).write_text(json.dumps({"build_seconds": round(seconds, 1)}))
        print(f"built {path.name} ({messages:,} messages) in {seconds:.1f}s")
    return path


def build_info(path: Path) -> Path:
    """Where the time it took to build ``path`` is kept (the build itself is cached)."""
    return path.with_name(path.name + ".json")


def working_copy(source: Path, destination: Path) -> Path:
    """Benchmarks write to a copy, so the cached file stays pristine."""
    shutil.copyfile(source, destination)
    return destination


def build(path: Path, messages: int, users: int, seed: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_create_schema(path))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")  # a cache: rebuilt if a crash leaves it broken
    _insert_agents(db, users)
    rng = random.Random(seed)
    db.execute("BEGIN")
    batch: list[tuple[int, str, str, int]] = []
    for row in _rows(rng, messages, users):
        batch.append(row)
        if len(batch) >= BATCH:
            _flush(db, batch)
    _flush(db, batch)
    db.execute("COMMIT")
    _finish_agents(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def _create_schema(path: Path) -> None:
    store = await SQLiteStorage.open(path)
    await store.close()


def _insert_agents(db: sqlite3.Connection, users: int) -> None:
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO agents (id, platform, user_id, display_name, created_at, session_count) "
        "VALUES (?, ?, ?, ?, ?, 1)",
        [(i, PLATFORM, f"u{i}", f"User {i}", START_MS) for i in range(1, users + 1)],
    )
    for label, value in (("persona", "I am a friendly companion."), ("human", "Name: someone")):
        db.executemany(
            "INSERT INTO blocks (agent_id, label, value, char_limit, updated_at) "
            "VALUES (?, ?, ?, 5000, ?)",
            [(i, label, value, START_MS) for i in range(1, users + 1)],
        )
    db.execute("COMMIT")


def _rows(rng: random.Random, messages: int, users: int) -> Iterator[tuple[int, str, str, int]]:
    vocabulary = _vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(vocabulary) + 1)))
    for n in range(messages):
        agent = n % users + 1
        role = "user" if (n // users) % 2 == 0 else "assistant"
        words = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(5, 28))
        words[rng.randrange(len(words))] = rng.choice(TOPICS)
        yield agent, role, " ".join(words).capitalize() + ".", START_MS + n * STEP_MS


def _vocabulary(rng: random.Random) -> list[str]:
    made_up = {
        "".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(3))
        for _ in range(6000)
    }
    return COMMON + TOPICS + sorted(made_up)


def _flush(db: sqlite3.Connection, batch: list[tuple[int, str, str, int]]) -> None:
    db.executemany(
        "INSERT INTO messages (agent_id, role, content, created_at) VALUES (?, ?, ?, ?)", batch
    )
    batch.clear()


def _finish_agents(db: sqlite3.Connection) -> None:
    """Counters, last activity, and a folded context: the last messages stay in the window."""
    db.execute("BEGIN")
    db.execute(
        "UPDATE agents SET message_count = (SELECT COUNT(*) FROM messages m "
        "WHERE m.agent_id = agents.id), last_user_at = (SELECT MAX(created_at) FROM messages m "
        "WHERE m.agent_id = agents.id)"
    )
    db.execute(
        f"UPDATE agents SET context_start_id = COALESCE((SELECT id FROM messages m WHERE "
        f"m.agent_id = agents.id AND m.role = 'user' ORDER BY id DESC LIMIT 1 OFFSET "
        f"{IN_CONTEXT // 2 - 1}), 0)"
    )
    db.execute(
        "INSERT INTO summaries (agent_id, content, through_message_id, created_at) "
        "SELECT id, 'Earlier they talked about hobbies, family and plans.', "
        "context_start_id - 1, ? FROM agents",
        (START_MS,),
    )
    db.execute(
        "UPDATE agents SET summary_id = (SELECT MAX(id) FROM summaries s "
        "WHERE s.agent_id = agents.id)"
    )
    db.execute("COMMIT")
