"""Memory: the bot's resident set as people and history grow.

Runs in a fresh process that imports what a bot with both adapters imports (discord.py,
python-telegram-bot, the openai SDK), builds the runtime exactly as the composition root does,
and drives it directly (zero-latency model): RSS at ready, after 10,000 distinct people have
each sent one message (the runtime must not keep them all in memory), and after 100,000
messages. Target: ≤ 150 MB after 10,000 people.

    python -m bench.memory
    python -m bench.memory --users 1000 --messages 5000     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import REPO, print_table, write_json


def rss_mb() -> float:
    import psutil  # noqa: PLC0415

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


async def child(users: int, messages: int) -> dict[str, Any]:
    import discord  # noqa: F401, PLC0415  (the bot imports these with both adapters set)
    import openai  # noqa: F401, PLC0415
    import telegram.ext  # noqa: F401, PLC0415

    from agentcore.clock import SystemClock  # noqa: PLC0415
    from agentcore.llm.fake import reply  # noqa: PLC0415
    from agentcore.storage.sqlite import SQLiteStorage  # noqa: PLC0415
    from agentcore.types import AgentKey, InboundMessage  # noqa: PLC0415
    from bench.bot import scripted_runtime  # noqa: PLC0415

    clock = SystemClock()
    with tempfile.TemporaryDirectory() as folder:
        storage = await SQLiteStorage.open(Path(folder) / "bench.db")
        runtime = scripted_runtime(storage, lambda r: reply("ok"))
        figures = {"ready_mb": rss_mb()}
        sent = 0
        for round_ in range(max(1, messages // users)):
            for batch in range(0, users, 100):
                await asyncio.gather(
                    *(
                        runtime.handle(
                            InboundMessage(
                                AgentKey("bench", f"u{u}"), f"hello number {round_}", clock.now()
                            )
                        )
                        for u in range(batch, min(batch + 100, users))
                    )
                )
            sent += users
            if round_ == 0:
                gc.collect()
                figures["after_users_mb"] = rss_mb()
                figures["cached_slots"] = runtime.cached_agents
        gc.collect()
        figures["after_messages_mb"] = rss_mb()
        figures["messages_sent"] = sent
        figures["messages_stored"] = sent * 2  # each turn stores the message and the answer
        await runtime.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="500 people, 1,000 messages")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.users, args.messages = 500, 1000
    if args.child:
        print(json.dumps(asyncio.run(child(args.users, args.messages))))
        return
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            "--child",
            "--users",
            str(args.users),
            "--messages",
            str(args.messages),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1]) | {"users": args.users}
    print_table(
        "Resident memory of a bot with both platform libraries loaded (MB)",
        [
            "at ready",
            f"after {args.users:,} people",
            f"after {r['messages_sent']:,} messages",
            "cached per-person slots",
        ],
        [[r["ready_mb"], r["after_users_mb"], r["after_messages_mb"], r["cached_slots"]]],
    )
    print(f"wrote {write_json('memory', r)}")


if __name__ == "__main__":
    main()
