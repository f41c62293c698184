"""Agent creation and per-turn core overhead, with a zero-latency scripted model.

Everything except the model call is measured: accepting (storing) the message, loading or
creating the agent, compiling the context, the model round trip through the runtime (0 ms here),
and storing the answer. Histories of several sizes (1,000 users) show whether it stays flat.
The baseline, measured in the same run, is one database round trip (``SELECT 1``).

Automatic recall (a search of the person's older messages on every turn) is on by default; the
same turns are also run with it off (``[memory] recall_tokens = 0``), interleaved one by one with
the others so both see the same caches, and reported beside them.

    python -m bench.core_turn                  # 100k messages
    python -m bench.core_turn --sizes 10000 100000 1000000
    python -m bench.core_turn --backend postgres   # the same on PostgreSQL (see bench.pg)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentcore.clock import SystemClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import reply
from agentcore.runtime import AgentRuntime
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.postgres.connection import Database as PgDatabase
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.connection import Database
from agentcore.types import AgentKey, InboundMessage
from bench import pg
from bench.bot import bench_settings, scripted_runtime
from bench.common import print_table, summary_ms, write_json
from bench.dataset import PLATFORM, history_db, working_copy

USERS = 1000


def _instant(request: LLMRequest) -> LLMResponse:
    return reply("Sure, noted.")


async def _timed_turns(runtime: AgentRuntime, keys: list[AgentKey]) -> list[float]:
    return [await _timed_turn(runtime, key, i) for i, key in enumerate(keys)]


async def _timed_turn(runtime: AgentRuntime, key: AgentKey, i: int) -> float:
    message = InboundMessage(key, f"Message number {i} about hiking", SystemClock().now())
    started = time.perf_counter()
    answer = await runtime.handle(message)
    elapsed = time.perf_counter() - started
    assert answer.text == "Sure, noted.", answer
    return elapsed


async def _with_and_without_recall(
    on: AgentRuntime, off: AgentRuntime, keys: list[AgentKey]
) -> tuple[list[float], list[float]]:
    """The same people's turns, alternating between automatic recall on and off."""
    with_recall, without = [], []
    for i, key in enumerate(keys):
        with_recall.append(await _timed_turn(on, key, 2 * i))
        without.append(await _timed_turn(off, key, 2 * i + 1))
    return with_recall, without


async def _sqlite_baseline(path: Path, rounds: int = 2000) -> list[float]:
    """The cheapest possible read on the same file, the way the storage reads (one trip to
    the reader's thread and back), for scale."""
    db = await Database.open(str(path), busy_timeout_ms=5000, prepare=_nothing)
    try:
        return await _timed(lambda: db.fetch("SELECT 1"), rounds)
    finally:
        await db.close()


async def _postgres_baseline(url: str, rounds: int = 2000) -> list[float]:
    """The cheapest possible query on the same database, through the storage's pool."""
    db = await PgDatabase.open(url, pool_size=1, prepare=_nothing)
    try:
        return await _timed(lambda: db.read(lambda conn: conn.fetchval("SELECT 1")), rounds)
    finally:
        await db.close()


async def _nothing(conn: object) -> None:
    """The storage opened (and migrated) the database before the baseline does."""


async def _timed(call: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def _measure(storage: Storage, size: int, turns: int, creations: int) -> dict[str, Any]:
    # Random people send bursts here; the flood limit is not what is being measured.
    runtime = scripted_runtime(storage, _instant, bench_settings(rate_limit_per_minute=10**6))
    no_recall = bench_settings(
        {"AGENTCORE_MEMORY__RECALL_TOKENS": "0"}, rate_limit_per_minute=10**6
    )
    without_recall = scripted_runtime(storage, _instant, no_recall)
    rng = random.Random(size)
    await _timed_turns(runtime, [AgentKey(PLATFORM, "u1")] * 20)  # warm caches
    existing = [AgentKey(PLATFORM, f"u{rng.randint(1, USERS)}") for _ in range(turns)]
    turn, turn_without_recall = await _with_and_without_recall(runtime, without_recall, existing)
    fresh = [AgentKey(PLATFORM, f"new{size}-{i}") for i in range(creations)]
    create = await _timed_turns(runtime, fresh)
    await runtime.shutdown()
    return {
        "messages": size,
        "turn": summary_ms(turn),
        "turn_without_recall": summary_ms(turn_without_recall),
        "create": summary_ms(create),
    }


async def measure_sqlite(source: Path, size: int, turns: int, creations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = working_copy(source, Path(tmp) / "bench.db")
        figures = await _measure(await SQLiteStorage.open(path), size, turns, creations)
        return figures | {"baseline_roundtrip": summary_ms(await _sqlite_baseline(path))}


async def measure_postgres(
    server: str, history: str, size: int, turns: int, creations: int, sync: str
) -> dict[str, Any]:
    async with pg.working_copy(server, history, synchronous_commit=sync) as url:
        await pg.prewarm(url)
        figures = await _measure(await PostgresStorage.open(url), size, turns, creations)
        return figures | {"baseline_roundtrip": summary_ms(await _postgres_baseline(url))}


def measure(backend: str, size: int, turns: int, creations: int, sync: str) -> dict[str, Any]:
    source = history_db(size, USERS)
    if backend == "sqlite":
        return asyncio.run(measure_sqlite(source, size, turns, creations))
    with pg.bench_server() as server:
        history = pg.history_database(server, source)
        figures = asyncio.run(measure_postgres(server, history, size, turns, creations, sync))
        return figures | {"synchronous_commit": sync}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--creations", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        default="on",
        help="PostgreSQL: wait for each commit's WAL flush (on, the default) or not (off: "
        "a server crash may lose the last moments, as SQLite's synchronous=NORMAL may)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.turns, args.creations = [2_000], 100, 50
    results = [
        measure(args.backend, size, args.turns, args.creations, args.synchronous_commit)
        for size in args.sizes
    ]
    rows = []
    for r in results:
        base = r["baseline_roundtrip"]["median_ms"]
        for name in ("create", "turn", "turn_without_recall"):
            s = r[name]
            rows.append(
                [
                    f"{r['messages']:,}",
                    name,
                    s["median_ms"],
                    s["p99_ms"],
                    round(s["median_ms"] / base, 1),
                ]
            )
    print_table(
        f"Core overhead per message (zero-latency model, {args.backend}), milliseconds",
        ["messages", "what", "median", "p99", "x roundtrip"],
        rows,
    )
    print(f"baseline database round trip: {results[0]['baseline_roundtrip']['median_ms']} ms")
    name = "core_turn" if args.backend == "sqlite" else f"core_turn-{args.backend}"
    if args.backend == "postgres" and args.synchronous_commit == "off":
        name += "_sync_off"
    print(f"wrote {write_json(name, {'backend': args.backend, 'results': results})}")


if __name__ == "__main__":
    main()
