"""Concurrency: 1,000 people each send 3 messages at once, against a model that takes 200 ms
per call, with at most 32 model calls in flight.

Expected total ≈ 3,000 × 0.2 s / 32 = 18.75 s (target: within +20%), with every person's
messages answered in order, never interleaved, and no errors.

    python -m bench.concurrency
    python -m bench.concurrency --users 100 --latency 0.05   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentcore.clock import SystemClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import last_user_text, reply
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings, scripted_runtime
from bench.common import print_table, write_json

MESSAGES_PER_USER = 3
CAP = 32


async def run(users: int, latency: float) -> dict[str, Any]:
    seen: dict[str, list[str]] = defaultdict(list)  # what the model was asked, per person

    async def slow_model(request: LLMRequest) -> LLMResponse:
        text = last_user_text(request)
        seen[text.split(":")[0]].append(text)
        await asyncio.sleep(latency)  # the model's own latency, as a real endpoint has
        return reply("ok " + text)

    with tempfile.TemporaryDirectory() as folder:
        storage = await SQLiteStorage.open(Path(folder) / "bench.db")
        runtime = scripted_runtime(storage, slow_model, bench_settings(llm_concurrency=CAP))
        clock = SystemClock()
        messages = [
            InboundMessage(AgentKey("bench", f"u{u}"), f"u{u}: message {n}", clock.now())
            for n in range(MESSAGES_PER_USER)
            for u in range(users)
        ]
        started = time.perf_counter()
        answers = await asyncio.gather(*(runtime.handle(m) for m in messages))
        elapsed = time.perf_counter() - started
        await runtime.shutdown()
    errors = sum(1 for m, a in zip(messages, answers, strict=True) if a.text != "ok " + m.text)
    expected_order = [f"message {n}" for n in range(MESSAGES_PER_USER)]
    out_of_order = sum(
        1 for texts in seen.values() if [t.split(": ")[1] for t in texts] != expected_order
    )
    ideal = users * MESSAGES_PER_USER * latency / CAP
    return {
        "users": users,
        "messages": len(messages),
        "model_latency_s": latency,
        "cap": CAP,
        "total_s": round(elapsed, 2),
        "ideal_s": round(ideal, 2),
        "over_ideal": round(elapsed / ideal - 1, 3),
        "errors": errors,
        "people_out_of_order": out_of_order + (users - len(seen)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--smoke", action="store_true", help="100 people, 100 ms model")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.latency = 100, 0.1
    r = asyncio.run(run(args.users, args.latency))
    print_table(
        f"{r['messages']} messages from {r['users']} people at once, model {r['model_latency_s']}s,"
        f" cap {r['cap']}",
        ["total s", "ideal s", "over ideal", "errors", "people out of order"],
        [
            [
                r["total_s"],
                r["ideal_s"],
                f"{r['over_ideal']:+.1%}",
                r["errors"],
                r["people_out_of_order"],
            ]
        ],
    )
    print(f"wrote {write_json('concurrency', r)}")


if __name__ == "__main__":
    main()
