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
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord

from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import reply
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings, scripted_runtime
from bench.common import print_table, summary_ms, write_json
from bots.discord import build_discord_adapter
from config import Settings
from tests.fakes.discord_server import FakeDiscord, snowflake, user_payload

WHAT = "MESSAGE_CREATE dispatched by the fake gateway -> reply POST at the fake REST"


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


def _noted(request: LLMRequest) -> LLMResponse:
    return reply("Noted, thanks!")


def _settings(env: dict[str, str] | None = None) -> Settings:
    # One person sends hundreds of messages here; the per-person flood limit would hold them
    # back, and this benchmark measures the message path, not that limit.
    return bench_settings(env, rate_limit_per_minute=100_000)


def summarise(scenario: str, seconds: Sequence[float]) -> dict[str, Any]:
    return {"scenario": scenario, **summary_ms(seconds)}


async def measure(single_messages: int, crowd: int, rounds: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        async with FakeDiscord() as fake:
            settings = _settings(
                {
                    "DISCORD_TOKEN": fake.token,
                    "DISCORD_API_BASE": fake.api_base,
                    "DISCORD_GATEWAY_URL": fake.gateway_url,
                }
            )
            runtime = scripted_runtime(storage, _noted, settings)
            adapter = build_discord_adapter(settings, runtime, storage)
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


async def measure_core_only(single_messages: int, crowd: int, rounds: int) -> list[dict[str, Any]]:
    """The same messages straight into ``runtime.handle``: what the core alone takes, so the
    difference to the figures above is what Discord (client, adapter, HTTP) adds."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        runtime = scripted_runtime(storage, _noted, _settings())
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = (10, 50, 2) if args.smoke else (300, 50, 20)
    started = time.perf_counter()
    rows = asyncio.run(measure(*sizes))
    rows += asyncio.run(measure_core_only(*sizes))
    print_table(
        f"{WHAT}, ms",
        ["scenario", "messages", "median", "p95", "max"],
        [[r["scenario"], r["n"], r["median_ms"], r["p95_ms"], r["max_ms"]] for r in rows],
    )
    result = {
        "what": WHAT,
        "smoke": args.smoke,
        "discord.py": discord.__version__,
        "seconds": round(time.perf_counter() - started, 2),
        "rows": rows,
    }
    print(f"wrote {write_json('discord_latency', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
