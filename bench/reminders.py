"""Reminders: how late they go out, and what the scheduler costs while nothing is due.

Firing delay: 10,000 reminders wait across 1,000 people (the rest are due a day later); 1,000 of
them come due over 20 seconds and each runs a real turn (zero-latency scripted model) and is
handed to an outbox. Delay = when the outbox got it − when it was due, on the wall clock.
Baselines measured in the same run: how late a bare ``asyncio.sleep`` wakes (the floor of any
sleeping scheduler), and one ordinary turn through ``runtime.handle`` (the work each reminder
does).

Idle cost: the same 10,000 reminders, none due for a day; the scheduler runs for a while and
the process's CPU time and the scheduler's queries are counted, against the same process idle
without the scheduler.

    python -m bench.reminders
    python -m bench.reminders --backend postgres   # the same on PostgreSQL (see bench.pg)
    python -m bench.reminders --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agentcore.clock import MAX_NAP, SystemClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.memory.blocks import default_blocks
from agentcore.outbox import Delivery
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import DeliveryScope, NewReminder
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, InboundMessage
from bench import pg
from bench.bot import bench_settings
from bench.common import print_table, summary_ms, write_json
from bots.compose import build_runtime, build_scheduler
from tests import postgres

PLATFORM = "bench"


def _instant(request: LLMRequest) -> LLMResponse:
    return reply("Time for your reminder!")


class TimedOutbox:
    """Records when each reminder was handed over."""

    scope = DeliveryScope(PLATFORM)

    def __init__(self, clock: SystemClock, expected: int = 0) -> None:
        self._clock = clock
        self._expected = expected
        self.sent: list[tuple[AgentKey, datetime]] = []
        self.all_sent = asyncio.Event()

    async def deliver(self, delivery: Delivery) -> bool:
        self.sent.append((delivery.key, self._clock.now()))
        if len(self.sent) >= self._expected:
            self.all_sent.set()
        return True


class QueryCount:
    """Counts the scheduler's storage calls on ``storage`` (each is one statement)."""

    SCHEDULER_CALLS = ("next_fire_at", "claim_due", "next_silence", "add_checkins")

    def __init__(self, storage: Storage) -> None:
        self.calls = 0
        for name in self.SCHEDULER_CALLS:
            setattr(storage, name, self._counted(getattr(storage, name)))

    def _counted(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any) -> Any:
            self.calls += 1
            return await call(*args)

        return counted


@contextlib.asynccontextmanager
async def _new_database(backend: str) -> AsyncIterator[str]:
    """Where a new, empty database of ``backend`` is (a SQLite path, a PostgreSQL URL), for one
    measurement; removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "bench.db")
        return
    with pg.bench_server() as server:
        url = await postgres.fresh_database(server)
        try:
            yield url
        finally:
            await postgres.drop_database(server, url)


@contextlib.asynccontextmanager
async def opened(backend: str) -> AsyncIterator[Storage]:
    async with _new_database(backend) as where:
        storage: Storage
        if backend == "postgres":
            storage = await PostgresStorage.open(where)
        else:
            storage = await SQLiteStorage.open(where)
        try:
            yield storage
        finally:
            await storage.close()


async def _people(storage: Storage, people: int, at: datetime) -> list[int]:
    specs = default_blocks(bench_settings().agent.memory)
    ids = []
    for i in range(people):
        agent = await storage.create_agent(AgentKey(PLATFORM, f"p{i}"), f"p{i}", at, specs)
        assert agent is not None
        ids.append(agent.id)
    return ids


async def _add(storage: Storage, ids: list[int], times: list[datetime], cap: int) -> float:
    """Reminder ``i`` at ``times[i]`` for person ``ids[i % len(ids)]``; seconds per add."""
    started = time.perf_counter()
    for i, at in enumerate(times):
        new = NewReminder(ids[i % len(ids)], f"reminder {i}", at, at, ChatKind.PRIVATE, "")
        assert await storage.add_reminder(new, cap) is not None
    return (time.perf_counter() - started) / max(1, len(times))


async def _fill_later(
    storage: Storage, people: int, pending: int, later: datetime
) -> tuple[list[int], float]:
    """``people`` agents and ``pending`` reminders a day away; how long one add took."""
    ids = await _people(storage, people, later)
    times = [later + timedelta(seconds=i) for i in range(pending)]
    return ids, await _add(storage, ids, times, pending)


async def firing(
    backend: str, people: int, pending: int, firing_count: int, window: float
) -> dict[str, Any]:
    clock = SystemClock()
    settings = bench_settings()
    async with opened(backend) as storage:
        later = clock.now() + timedelta(days=1)
        ids, per_add = await _fill_later(storage, people, pending - firing_count, later)
        # The due ones are added last, one per person, timed from when their adds will be done.
        start = clock.now() + timedelta(seconds=1 + 2 * per_add * firing_count)
        due = sorted(
            start + timedelta(seconds=random.uniform(0, window)) for _ in range(firing_count)
        )
        await _add(storage, ids, due, pending)
        doorbell = Doorbell()
        llm = FunctionLLM(_instant, record=False)
        runtime = build_runtime(settings, storage, llm, clock, doorbell=doorbell)
        scheduler = build_scheduler(settings, storage, runtime, clock, doorbell)
        outbox = TimedOutbox(clock, firing_count)
        scheduler.attach(outbox)
        scheduler.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outbox.all_sent.wait(), window + 60)
        await scheduler.stop(5.0)
        due_of = {AgentKey(PLATFORM, f"p{i}"): at for i, at in enumerate(due)}  # one each
        delays = [(at - due_of[key]).total_seconds() for key, at in outbox.sent]
        turn = await _turns(runtime, people)
        await runtime.shutdown()
    return {
        "backend": backend,
        "people": people,
        "pending": pending,
        "fired": len(outbox.sent),
        "expected": firing_count,
        "people_reached": len({key for key, _ in outbox.sent}),
        "window_s": window,
        "delay": summary_ms(delays),
        "baseline_turn": summary_ms(turn),
        "baseline_sleep_overshoot": summary_ms(await _sleep_overshoot(200)),
    }


async def _turns(runtime: Any, people: int, count: int = 200) -> list[float]:
    clock = SystemClock()
    samples = []
    for i in range(count):
        message = InboundMessage(AgentKey(PLATFORM, f"p{i % people}"), "hello", clock.now())
        started = time.perf_counter()
        await runtime.handle(message)
        samples.append(time.perf_counter() - started)
    return samples


async def _sleep_overshoot(count: int) -> list[float]:
    """How late asyncio wakes from a short sleep: the floor for any scheduler that sleeps."""
    samples = []
    for _ in range(count):
        target = time.perf_counter() + 0.005
        await asyncio.sleep(0.005)
        samples.append(time.perf_counter() - target)
    return samples


async def idle(backend: str, people: int, pending: int, seconds: float) -> dict[str, Any]:
    clock = SystemClock()
    settings = bench_settings()
    async with opened(backend) as storage:
        await _fill_later(storage, people, pending, clock.now() + timedelta(days=1))
        doorbell = Doorbell()
        runtime = build_runtime(settings, storage, FunctionLLM(_instant), clock, doorbell=doorbell)
        baseline_cpu = await _cpu_over(seconds)  # the same process, no scheduler
        count = QueryCount(storage)
        scheduler = build_scheduler(settings, storage, runtime, clock, doorbell)
        scheduler.attach(TimedOutbox(clock))
        scheduler.start()
        await scheduler.asleep.wait()
        count.calls = 0
        scheduler_cpu = await _cpu_over(seconds)
        queries = count.calls
        await scheduler.stop(1.0)
        await runtime.shutdown()
    per_hour = 3600 / seconds
    return {
        "backend": backend,
        "people": people,
        "pending": pending,
        "seconds": seconds,
        "cpu_ms_per_hour": round(scheduler_cpu * 1000 * per_hour, 1),
        "baseline_cpu_ms_per_hour": round(baseline_cpu * 1000 * per_hour, 1),
        "queries_per_minute": round(queries * 60 / seconds, 2),
        "naps_per_hour": round(timedelta(hours=1) / MAX_NAP),
    }


async def _cpu_over(seconds: float) -> float:
    started = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--firing", type=int, default=1000)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.firing > args.people:
        parser.error("--firing must not exceed --people (one due reminder per person)")
    if args.smoke:
        args.people, args.pending, args.firing, args.window, args.idle_seconds = (
            100,
            1000,
            100,
            2,
            2,
        )
    random.seed(7)
    fire = asyncio.run(firing(args.backend, args.people, args.pending, args.firing, args.window))
    rest = asyncio.run(idle(args.backend, args.people, args.pending, args.idle_seconds))
    d, t, s = fire["delay"], fire["baseline_turn"], fire["baseline_sleep_overshoot"]
    print_table(
        f"Reminder firing delay ({args.backend}), {fire['pending']:,} pending across "
        f"{fire['people']:,} people, "
        f"{fire['fired']:,} of {fire['expected']:,} fired over {fire['window_s']:.0f} s, ms",
        ["what", "median", "p95", "p99", "max"],
        [
            ["due → sent", d["median_ms"], d["p95_ms"], d["p99_ms"], d["max_ms"]],
            ["baseline: one turn", t["median_ms"], t["p95_ms"], t["p99_ms"], t["max_ms"]],
            [
                "baseline: asyncio.sleep lateness",
                s["median_ms"],
                s["p95_ms"],
                s["p99_ms"],
                s["max_ms"],
            ],
        ],
    )
    print_table(
        f"Scheduler idle cost ({args.backend}, {rest['pending']:,} pending, none due; "
        f"{rest['seconds']:.0f} s)",
        ["what", "scheduler", "baseline (no scheduler)"],
        [
            ["CPU ms per hour", rest["cpu_ms_per_hour"], rest["baseline_cpu_ms_per_hour"]],
            ["queries per minute", rest["queries_per_minute"], 0],
        ],
    )
    name = "reminders" if args.backend == "sqlite" else f"reminders-{args.backend}"
    print(f"wrote {write_json(name, {'firing': fire, 'idle': rest})}")
    if not fire["fired"] == fire["people_reached"] == fire["expected"]:
        raise SystemExit(f"expected {fire['expected']} reminders, one per person: {fire}")


if __name__ == "__main__":
    main()
