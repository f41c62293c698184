"""Agent creation and per-turn core overhead, with a zero-latency scripted model.

Everything except the model call is measured: accepting (storing) the message, loading or
creating the agent, compiling the context, the model round trip through the runtime (0 ms here),
and storing the answer. Histories of several sizes (1,000 users) show whether it stays flat.
The baseline, measured in the same run, is one database round trip (``SELECT 1`` on the reader).

    python -m bench.core_turn                  # 100k messages
    python -m bench.core_turn --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from agentcore.clock import SystemClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import reply
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.connection import Database
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings, scripted_runtime
from bench.common import print_table, summary_ms, write_json
from bench.dataset import PLATFORM, history_db, working_copy

USERS = 1000


def _instant(request: LLMRequest) -> LLMResponse:
    return reply("Sure, noted.")


async def _timed_turns(runtime: AgentRuntime, keys: list[AgentKey]) -> list[float]:
    clock = SystemClock()
    samples = []
    for i, key in enumerate(keys):
        message = InboundMessage(key, f"Message number {i} about hiking", clock.now())
        started = time.perf_counter()
        answer = await runtime.handle(message)
        samples.append(time.perf_counter() - started)
        assert answer.text == "Sure, noted.", answer
    return samples


async def _migrated_already(conn: aiosqlite.Connection) -> None:
    """The storage opened this file (and migrated it) before the baseline does."""


async def _baseline(path: Path, rounds: int = 2000) -> list[float]:
    """The cheapest possible read on the same file, the way the storage reads (one trip to
    the reader's thread and back), for scale."""
    samples = []
    db = await Database.open(str(path), busy_timeout_ms=5000, prepare=_migrated_already)
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await db.fetch("SELECT 1")
            samples.append(time.perf_counter() - started)
    finally:
        await db.close()
    return samples


async def measure(source: Path, size: int, turns: int, creations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = working_copy(source, Path(tmp) / "bench.db")
        storage = await SQLiteStorage.open(path)
        # Random people send bursts here; the flood limit is not what is being measured.
        runtime = scripted_runtime(storage, _instant, bench_settings(rate_limit_per_minute=10**6))
        rng = random.Random(size)
        await _timed_turns(runtime, [AgentKey(PLATFORM, "u1")] * 20)  # warm caches
        existing = [AgentKey(PLATFORM, f"u{rng.randint(1, USERS)}") for _ in range(turns)]
        turn = await _timed_turns(runtime, existing)
        fresh = [AgentKey(PLATFORM, f"new{size}-{i}") for i in range(creations)]
        create = await _timed_turns(runtime, fresh)
        baseline = await _baseline(path)
        await runtime.shutdown()
    return {
        "messages": size,
        "turn": summary_ms(turn),
        "create": summary_ms(create),
        "baseline_roundtrip": summary_ms(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--creations", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.turns, args.creations = [2_000], 100, 50
    results = [
        asyncio.run(measure(history_db(size, USERS), size, args.turns, args.creations))
        for size in args.sizes
    ]
    rows = []
    for r in results:
        base = r["baseline_roundtrip"]["median_ms"]
        for name in ("create", "turn"):
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
        "Core overhead per message (zero-latency model), milliseconds",
        ["messages", "what", "median", "p99", "x roundtrip"],
        rows,
    )
    print(f"baseline database round trip: {results[0]['baseline_roundtrip']['median_ms']} ms")
    print(f"wrote {write_json('core_turn', {'results': results})}")


if __name__ == "__main__":
    main()
