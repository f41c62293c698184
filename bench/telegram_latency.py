"""Telegram adapter latency: from an update appearing in getUpdates to its reply's sendMessage.

The real composition root (``bots.__main__``: settings, SQLite storage, runtime, the Telegram
adapter on python-telegram-bot) runs against the fake Bot API server on 127.0.0.1, with a
zero-latency scripted model in place of the network model, so the figures are the bot's own
overhead: long polling, storing the message, the agent turn around the model call, rendering and
sending. The fake server runs in the same process and event loop.

Scenarios: one user writing a message every 0.1 s (a fast typist, still under Telegram's flood
limit); 50 users writing at the same moment (a fresh burst each round, 1 s apart), once as
deployed (PTB's AIORateLimiter keeps the bot under Telegram's ~30 requests/s, and the "typing"
action before each answer counts too, so a burst of 50 answers needs 100 requests), once without
a rate limiter (the bot's own throughput).

    python -m bench.telegram_latency            # full run
    python -m bench.telegram_latency --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import telegram

from agentcore.clock import SystemClock
from agentcore.llm.fake import last_user_text, reply
from agentcore.runtime import AgentRuntime, Deliver, Ticket
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import InboundMessage, Reply, ReplySink
from bench.bot import bench_settings, scripted_runtime
from bench.common import print_table, summary_ms, write_json
from bots.__main__ import adapter_factories
from bots.adapter import Adapter
from bots.telegram import TelegramAdapter, build_application
from tests.fakes.telegram_server import FakeTelegram, User


def summarize(scenario: str, latencies: Sequence[float], turns: Sequence[float]) -> dict[str, Any]:
    """The latencies' figures, and the median time inside ``runtime.answer`` (the core's turn,
    model time ~0; part of the total)."""
    turn_median_ms = summary_ms(turns)["median_ms"]
    return {"scenario": scenario, **summary_ms(latencies), "turn_median_ms": turn_median_ms}


def time_turns(runtime: AgentRuntime) -> list[float]:
    """Record how long each ``runtime.answer`` takes, sending the reply not counted (wraps it
    on this instance)."""
    durations: list[float] = []
    answer = runtime.answer

    async def timed(
        ticket: Ticket, sink: ReplySink | None = None, *, deliver: Deliver | None = None
    ) -> Reply:
        sending = 0.0

        async def timed_delivery(message: InboundMessage, reply: Reply) -> None:
            nonlocal sending
            began = time.perf_counter()
            assert deliver is not None
            await deliver(message, reply)
            sending += time.perf_counter() - began

        started = time.perf_counter()
        try:
            return await answer(
                ticket, sink, deliver=timed_delivery if deliver is not None else None
            )
        finally:
            durations.append(time.perf_counter() - started - sending)

    runtime.answer = timed  # type: ignore[method-assign]
    return durations


async def one_round(fake: FakeTelegram, users: Sequence[User], round_no: int) -> list[float]:
    """Every user sends one message at once; the latency of each reply."""
    update_ids = {user.id: fake.private(user, f"round {round_no} from {user.id}") for user in users}
    replies_before = {user.id: len(fake.to_chat(user.id)) for user in users}
    await fake.wait_until(
        lambda: all(len(fake.to_chat(u.id)) > replies_before[u.id] for u in users), within=120
    )
    latencies = []
    for user in users:
        answer = fake.to_chat(user.id)[replies_before[user.id]]
        latencies.append(answer.at - fake.delivered_at[update_ids[user.id]])
    return latencies


async def scenario(
    fake: FakeTelegram, users: Sequence[User], rounds: int, pause: float
) -> list[float]:
    latencies: list[float] = []
    for round_no in range(rounds):
        latencies += await one_round(fake, users, round_no)
        if pause:
            await asyncio.sleep(pause)  # let the rate limiter's bucket refill
    return latencies


async def with_bot(
    fake: FakeTelegram, db: Path, rate_limited: bool
) -> tuple[AgentRuntime, Adapter]:
    """The bot as ``python -m bots`` builds it, with a zero-latency model."""
    settings = bench_settings(
        {"TELEGRAM_TOKEN": fake.token, "TELEGRAM_BASE_URL": fake.root},
        # One person sends hundreds of messages here; the per-person flood limit would hold
        # them back, and this benchmark measures the message path, not that limit.
        rate_limit_per_minute=100_000,
    )
    storage = await SQLiteStorage.open(db)
    runtime = scripted_runtime(
        storage, lambda request: reply("ok: " + last_user_text(request)), settings
    )
    if rate_limited:
        namespace = argparse.Namespace(user=None)
        [(_, make)] = adapter_factories(settings, namespace, runtime, SystemClock(), storage)
        adapter = make()
    else:
        adapter = TelegramAdapter(
            build_application(fake.token, fake.root, rate_limited=False), runtime
        )
    await adapter.start()
    return runtime, adapter


async def measure(
    name: str, users: int, rounds: int, rate_limited: bool, db: Path
) -> dict[str, Any]:
    async with FakeTelegram() as fake:
        runtime, adapter = await with_bot(fake, db, rate_limited)
        people = [User(10_000 + i, f"User{i}") for i in range(users)]
        pause = 1.0 if users > 1 else 0.1
        try:
            await one_round(fake, people, -1)  # warm up: agents created, connections open
            await asyncio.sleep(pause)
            turns = time_turns(runtime)
            latencies = await scenario(fake, people, rounds, pause)
        finally:
            await adapter.stop()
            await runtime.shutdown()
    return summarize(name, latencies, turns)


async def run(smoke: bool) -> list[dict[str, Any]]:
    solo_rounds, crowd_rounds = (20, 1) if smoke else (200, 10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, users, rounds, limited in [
            ("1 user, a message every 0.1 s", 1, solo_rounds, True),
            ("50 users at once, AIORateLimiter on (as deployed)", 50, crowd_rounds, True),
            ("50 users at once, AIORateLimiter off", 50, crowd_rounds, False),
        ]:
            rows.append(
                await measure(name, users, rounds, limited, Path(tmp) / f"{users}{limited}.db")
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny, fast run (for CI)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(run(args.smoke))
    print_table(
        "update in getUpdates -> its reply's sendMessage at the server (zero-latency model), ms",
        ["scenario", "n", "median", "p95", "max", "turn*"],
        [
            [r["scenario"], r["n"], r["median_ms"], r["p95_ms"], r["max_ms"], r["turn_median_ms"]]
            for r in rows
        ],
    )
    print("* median time inside runtime.answer (the core's turn, not sending); part of the total")
    result = {
        "smoke": args.smoke,
        "python_telegram_bot": telegram.__version__,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"wrote {write_json('telegram_latency', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
