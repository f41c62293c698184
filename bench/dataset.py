"""Synthetic chat histories for the benchmarks, bulk-inserted and cached between runs.

``history_db(messages, users)`` returns a SQLite file (schema from the real migrations, search
terms from the real analyser) holding ``messages`` rows of synthetic chat (Zipf-distributed
words, sessions of 12 turns about a day apart) spread over ``users`` agents, every agent's
history interleaved with everyone else's as in a busy bot. Each agent's context window holds
its last ~20 messages under a summary, as if it had been folded many times. The cache key
includes the migrations and the generator's version, so a change rebuilds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from agentcore.messages import Role
from agentcore.search.terms import message_terms
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.migrate import load_migrations
from bench.common import CACHE

PLATFORM = "bench"
GENERATOR_VERSION = 3  # bump when the synthetic data changes, so cached databases are rebuilt
START_MS = 1_672_531_200_000  # 2023-01-01 UTC
SESSION_TURNS = 12  # turns per session; sessions of one agent are about a day apart
IN_CONTEXT = 20

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
""".split()
SYLLABLES = "ka lo mi ra ne to su vi de ba po ri ta ge mo la fi nu se co".split()


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
                rows.append(
                    (agent + 1, role.value, text, base + turn * 30_000, message_terms(role, text))
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
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    asyncio.run(_create_schema(partial))
    db = sqlite3.connect(partial, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")  # a cache: rebuilt if a crash leaves it broken
    db.execute("PRAGMA cache_size = -262144")  # 256 MB while loading
    db.execute("BEGIN")
    _insert_agents(db, agents)
    db.executemany(
        "INSERT INTO messages (agent_id, role, content, created_at, terms) VALUES (?, ?, ?, ?, ?)",
        all_rows(agents, messages, seed, workers),
    )
    _fold_contexts(db)
    db.execute("COMMIT")
    db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    partial.rename(path)


def _insert_agents(db: sqlite3.Connection, agents: int) -> None:
    db.executemany(
        "INSERT INTO agents (id, platform, user_id, display_name, created_at, session_count) "
        "VALUES (?, ?, ?, ?, ?, 1)",
        [(a, PLATFORM, f"u{a}", f"User {a}", START_MS) for a in range(1, agents + 1)],
    )
    for label, value in (("persona", "I am a friendly companion."), ("human", "Name: someone")):
        db.executemany(
            "INSERT INTO blocks (agent_id, label, value, char_limit, updated_at) "
            "VALUES (?, ?, ?, 5000, ?)",
            [(a, label, value, START_MS) for a in range(1, agents + 1)],
        )


def _fold_contexts(db: sqlite3.Connection) -> None:
    """Last activity, and a folded context: as if each agent's window had been summarised many
    times, only its last ~20 messages are in the window, under a summary."""
    db.execute(
        "UPDATE agents SET last_user_at = (SELECT MAX(created_at) FROM messages m "
        "WHERE m.agent_id = agents.id)"
    )
    db.execute(
        "UPDATE agents SET context_start_id = COALESCE((SELECT id FROM messages m WHERE "
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


async def _create_schema(path: Path) -> None:
    store = await SQLiteStorage.open(path)
    await store.close()


def _cache_key(messages: int, users: int) -> str:
    schema = hashlib.sha256("".join(s for m in load_migrations() for s in m.statements).encode())
    return f"history-{users}a-{messages}m-g{GENERATOR_VERSION}-{schema.hexdigest()[:10]}"


def history_db(messages: int, users: int) -> Path:
    """The cached database for this size, building it first if needed."""
    path = CACHE / f"{_cache_key(messages, users)}.db"
    if not path.exists():
        started = time.perf_counter()
        build(path, users, messages)
        seconds = time.perf_counter() - started
        _build_info(path).write_text(json.dumps({"build_seconds": round(seconds, 1)}))
        print(f"built {path.name} ({messages:,} messages) in {seconds:.1f}s")
    return path


def build_seconds(path: Path) -> float | None:
    """How long building ``path`` took, if that was recorded (the build itself is cached)."""
    info = _build_info(path)
    return float(json.loads(info.read_text())["build_seconds"]) if info.exists() else None


def _build_info(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def working_copy(source: Path, destination: Path) -> Path:
    """Benchmarks write to a copy, so the cached file stays pristine. The copy is private, as
    the bot keeps its database (opening a file others may read tightens it, with a warning)."""
    destination.touch(mode=0o600)
    destination.chmod(0o600)
    shutil.copyfile(source, destination)
    return destination
