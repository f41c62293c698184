"""Database growth: bytes per stored message (indexes and full-text index included), and the
time to insert 1,000,000 messages (bulk, as the benchmarks' history builder does it) and to
store messages one at a time through the storage API (as turns do).

    python -m bench.growth
    python -m bench.growth --messages 100000     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from agentcore.clock import SystemClock
from agentcore.messages import Role
from agentcore.records import BlockSpec, NewMessage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bench.common import print_table, write_json
from bench.dataset import build_seconds, history_db

USERS = 1000


def file_bytes(path: Path) -> int:
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())


async def api_inserts(count: int) -> float:
    """Messages per second stored one by one through ``append_messages``."""
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as folder:
        storage = await SQLiteStorage.open(Path(folder) / "api.db")
        agent = await storage.create_agent(
            AgentKey("bench", "u"), "u", clock.now(), [BlockSpec("human", "", 100)]
        )
        assert agent is not None
        started = time.perf_counter()
        for i in range(count):
            await storage.append_messages(
                agent.id, [NewMessage(Role.USER, f"message {i} about hiking", clock.now())]
            )
        elapsed = time.perf_counter() - started
        await storage.close()
    return count / elapsed


def measure(messages: int, api_count: int) -> dict[str, Any]:
    path = history_db(messages, USERS)
    size = file_bytes(path)
    return {
        "messages": messages,
        "bytes": size,
        "bytes_per_message": round(size / messages, 1),
        "bulk_insert_seconds": build_seconds(path),
        "api_messages_per_second": round(asyncio.run(api_inserts(api_count))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--api", type=int, default=5000, help="messages stored through the API")
    parser.add_argument("--smoke", action="store_true", help="10,000 messages")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.api = 10_000, 500
    r = measure(args.messages, args.api)
    print_table(
        "Database growth",
        ["messages", "file MB", "bytes/message", "bulk insert s", "API inserts/s"],
        [
            [
                f"{r['messages']:,}",
                round(r["bytes"] / 1e6, 1),
                r["bytes_per_message"],
                r["bulk_insert_seconds"],
                r["api_messages_per_second"],
            ]
        ],
    )
    print(f"wrote {write_json('growth', r)}")


if __name__ == "__main__":
    main()
