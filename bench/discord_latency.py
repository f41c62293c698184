"""Discord round trip: time from the fake gateway dispatching MESSAGE_CREATE to the bot's reply
POST arriving at the fake REST API, with a zero-latency scripted model.

The real discord.py client, adapter, runtime and SQLite storage run in this process against the
fake Discord on 127.0.0.1, so the figure is the bot's own overhead per message (gateway parsing,
translation, storing the message, the agent turn without model time, storing the answer,
sending) plus loopback HTTP. Two scenarios: one user sending messages one after another, and 50
users each sending one message at the same moment (repeated for several rounds). The same
messages are then sent straight into the runtime ("core only"), so the difference is what the
Discord side adds.

    python -m bench.discord_latency            # full run
    python -m bench.discord_latency --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord

from agentcore.agent import AgentLoop
from agentcore.clock import SystemClock
from agentcore.commands import Commands
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.runtime import AgentRuntime
from agentcore.settings import AgentSettings, RuntimeSettings
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bots.discord.adapter import DiscordAdapter
from bots.discord.connect import make_client, point_at
from tests.fakes.discord_server import FakeDiscord, snowflake, user_payload

RESULTS = Path(__file__).resolve().parent / "results" / "discord_latency.json"


@dataclass(frozen=True)
class Figures:
    scenario: str
    messages: int
    median_ms: float
    p95_ms: float
    max_ms: float


def summarise(scenario: str, seconds: Sequence[float]) -> Figures:
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return Figures(scenario, len(ms), statistics.median(ms), p95, ms[-1])


class Harness:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    async def round_trip(self, users: Sequence[dict[str, Any]]) -> list[float]:
        """Every user sends one message at once; each one's dispatch-to-reply time."""
        channels = [int(u["id"]) + 1 for u in users]
        before = {c: len(self.fake.posted(c)) for c in channels}
        sent = []
        for user, channel in zip(users, channels, strict=True):
            payload = await self.fake.send_message(author=user, content="hi", channel_id=channel)
            sent.append(int(payload["id"]))
        await self.fake.wait_until(
            lambda: all(len(self.fake.posted(c)) > before[c] for c in channels), within=60
        )
        return [
            self.fake.posted(channel)[before[channel]].at - self.fake.dispatched_at[message]
            for channel, message in zip(channels, sent, strict=True)
        ]


def build_runtime(storage: SQLiteStorage) -> AgentRuntime:
    llm = FunctionLLM(lambda request: reply("Noted, thanks!"), record=False)
    clock = SystemClock()
    settings = AgentSettings()
    return AgentRuntime(
        storage=storage,
        llm=llm,
        loop=AgentLoop(storage=storage, llm=llm, clock=clock, settings=settings),
        commands=Commands(storage=storage, clock=clock, settings=settings),
        clock=clock,
        # One person sends hundreds of messages here; the per-person flood limit would hold
        # them back, and this benchmark measures the message path, not that limit.
        settings=RuntimeSettings(rate_limit_per_minute=100_000),
    )


async def measure(single_messages: int, crowd: int, rounds: int) -> list[Figures]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        runtime = build_runtime(storage)
        async with FakeDiscord() as fake:
            point_at(fake.api_base, fake.gateway_url)
            adapter = DiscordAdapter(runtime, make_client(sharded=False), fake.token)
            await adapter.start()
            try:
                harness = Harness(fake)
                users = [user_payload(snowflake(), f"user{i}") for i in range(crowd)]
                await harness.round_trip(users)  # warm-up: every agent exists afterwards
                one: list[float] = []
                for _ in range(single_messages):
                    one += await harness.round_trip(users[:1])
                many: list[float] = []
                for _ in range(rounds):
                    many += await harness.round_trip(users)
            finally:
                await adapter.stop()
                await runtime.shutdown()
    return [summarise("1 user", one), summarise(f"{crowd} users at once", many)]


async def measure_core_only(single_messages: int, crowd: int, rounds: int) -> list[Figures]:
    """The same messages straight into ``runtime.handle``: what the core alone takes, so the
    difference to the figures above is what Discord (client, adapter, HTTP) adds."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        runtime = build_runtime(storage)
        keys = [AgentKey("discord", str(i)) for i in range(crowd)]

        async def handle(key: AgentKey) -> float:
            started = time.perf_counter()
            await runtime.handle(InboundMessage(key, "hi", datetime.now(UTC)))
            return time.perf_counter() - started

        await asyncio.gather(*(handle(k) for k in keys))
        one = [await handle(keys[0]) for _ in range(single_messages)]
        many: list[float] = []
        for _ in range(rounds):
            many += await asyncio.gather(*(handle(k) for k in keys))
        await runtime.shutdown()
    return [summarise("1 user, core only", one), summarise(f"{crowd} users, core only", many)]


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "discord.py": discord.__version__,
    }


def print_table(figures: Sequence[Figures]) -> None:
    print(f"{'scenario':<24} {'messages':>8} {'median':>9} {'p95':>9} {'max':>9}")
    for f in figures:
        print(
            f"{f.scenario:<24} {f.messages:>8} {f.median_ms:>7.2f}ms {f.p95_ms:>7.2f}ms "
            f"{f.max_ms:>7.2f}ms"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = (10, 50, 2) if args.smoke else (300, 50, 20)
    started = time.perf_counter()
    figures = asyncio.run(measure(*sizes))
    figures += asyncio.run(measure_core_only(*sizes))
    print_table(figures)
    result = {
        "benchmark": "discord_latency",
        "what": "MESSAGE_CREATE dispatched by the fake gateway -> reply POST at the fake REST",
        "smoke": args.smoke,
        "machine": machine(),
        "seconds": round(time.perf_counter() - started, 2),
        "figures": [asdict(f) for f in figures],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
