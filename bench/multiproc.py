"""Several bot processes on one PostgreSQL database: throughput, lock hand-over, poller failover.

Throughput: 1,000 people each send 3 messages, answered by worker processes that each build the
runtime as ``python -m bots`` does (``bots.compose``) with an in-process scripted model; the
people are split across the workers (as Discord's shards split servers) and each worker sends
all of its messages at once. Measured in the same run: 1 process on SQLite, 1 process on
PostgreSQL, 3 processes on PostgreSQL, messages answered per second from the moment all workers
are told to go until the last answer. Twice: with a zero-latency model (the database and Python
are all the work, and this machine's 2 cores are shared by the workers and the server), and
with a model that takes ``--latency`` seconds and at most ``--cap`` calls at once per process
(the model is the limit, as in production: 3 processes run 3 × cap calls).

Lock hand-over: a process holds a person's lock (a turn waiting on its model) while this one
waits for it; the holder is killed (SIGKILL): the time until the waiter holds the lock. The
baseline, in the same run: the holder releasing it normally.

Poller failover: two ``python -m bots`` with Telegram on one database against the fake Bot
API; the process that polls is killed (SIGKILL): the time until the other one's first
getUpdates. The baseline: the poller stopped with SIGTERM (it hands the role over as it stops).

    python -m bench.multiproc
    python -m bench.multiproc --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from agentcore.clock import SystemClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import last_user_text, reply
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.postgres.connection import ROLE_LOCKS, lock_key
from agentcore.types import AgentKey, InboundMessage, ReplyKind
from bench.bot import bench_settings, scripted_runtime
from bench.common import REPO, print_table, summary_ms, write_json
from bench.pg import bench_server
from bots.compose import open_storage
from bots.telegram.adapter import POLLER
from tests import postgres
from tests.fakes.telegram_server import FakeTelegram
from tests.process import bot_env

WORKERS = 3
SOMEONE = AgentKey("bench", "someone")  # whose lock is handed over


# ------------------------------------------------------------------------------ workers


async def worker(database: str, people: list[int], messages: int, latency: float, cap: int) -> None:
    """One bot process answering ``messages`` from each of ``people``: ready, then on "go"
    sends them all at once; prints when it started and finished, and how many were answered."""

    async def model(request: LLMRequest) -> LLMResponse:
        if latency:
            await asyncio.sleep(latency)  # the model's own latency, as a real endpoint has
        return reply("ok " + last_user_text(request))

    env = {"AGENTCORE_DB": database, "AGENTCORE_LLM__CONCURRENCY": str(cap)}
    settings = bench_settings(env | {"AGENTCORE_STORAGE__POOL_SIZE": str(cap + 2)})
    runtime = scripted_runtime(await open_storage(settings), model, settings)
    now = SystemClock().now()
    batch = [
        InboundMessage(AgentKey("bench", f"u{u}"), f"u{u} message {n}", now)
        for n in range(messages)
        for u in people
    ]
    # Others than the measured people, once each: the connections a running bot has open.
    warm = [InboundMessage(AgentKey("warm", str(n)), "hello", now) for n in range(cap + 2)]
    await asyncio.gather(*(runtime.handle(m) for m in warm))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    started, cpu = time.perf_counter(), time.process_time()
    answers = await asyncio.gather(*(runtime.handle(m) for m in batch))
    finished, cpu = time.perf_counter(), time.process_time() - cpu
    # An empty reply: answered together with the person's message before it (it was stored
    # first, though its handling started later).
    failed = sum(a.kind is ReplyKind.ERROR for a in answers)
    print(json.dumps({"started": started, "finished": finished, "failed": failed, "cpu": cpu}))
    await runtime.shutdown()


async def throughput(
    database: str, processes: int, people: int, messages: int, latency: float, cap: int
) -> dict[str, Any]:
    """Messages answered per second by ``processes`` workers sharing ``database``."""
    shares = [list(range(w, people, processes)) for w in range(processes)]
    spawned = [await spawn_worker(database, share, messages, latency, cap) for share in shares]
    for proc in spawned:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line == b"ready\n", line
    for proc in spawned:  # all at once
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    results = []
    for proc in spawned:
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        results.append(json.loads(out.decode().splitlines()[0]))
    elapsed = max(r["finished"] for r in results) - min(r["started"] for r in results)
    answered = people * messages - sum(r["failed"] for r in results)
    return {
        "processes": processes,
        "messages": people * messages,
        "answered": answered,
        "seconds": round(elapsed, 3),
        "per_second": round(answered / elapsed, 1),
        # The bot processes' own CPU per message (the database server's is not counted).
        "bot_cpu_ms_per_message": round(1000 * sum(r["cpu"] for r in results) / answered, 2),
        "load_average": round(os.getloadavg()[0], 2),  # the machine is shared
    }


async def spawn_worker(
    database: str, people: list[int], messages: int, latency: float, cap: int
) -> asyncio.subprocess.Process:
    arguments = [database, json.dumps(people), str(messages), str(latency), str(cap)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.multiproc", "--worker", *arguments,
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


@asynccontextmanager
async def fresh(server: str, synchronous_commit: str = "on") -> AsyncIterator[str]:
    url = await postgres.fresh_database(server)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET synchronous_commit = {synchronous_commit}"
        )
    finally:
        await conn.close()
    try:
        yield url
    finally:
        await postgres.drop_database(server, url)


async def all_throughputs(
    server: str, people: int, messages: int, latency: float, cap: int
) -> dict[str, Any]:
    """1 process on SQLite, 1 and 3 on PostgreSQL: with a zero-latency model (also with
    ``synchronous_commit`` off, no commit waiting for the disk), and with a slow one."""
    figures: dict[str, Any] = {"people": people}
    runs = (("zero", 0.0, messages, "on"), ("zero_async", 0.0, messages, "off"),
            ("slow", latency, 1, "on"))  # fmt: skip
    for name, model_latency, count, commit in runs:
        figure: dict[str, Any] = {
            "model_latency_s": model_latency,
            "cap_per_process": cap,
            "messages_each": count,
            "synchronous_commit": commit,
        }
        if commit == "on":
            with tempfile.TemporaryDirectory() as folder:
                path = str(Path(folder) / "bench.db")
                figure["sqlite_1"] = await throughput(path, 1, people, count, model_latency, cap)
        for processes in (1, WORKERS):
            async with fresh(server, commit) as url:
                figure[f"postgres_{processes}"] = await throughput(
                    url, processes, people, count, model_latency, cap
                )
        one, more = figure["postgres_1"]["per_second"], figure[f"postgres_{WORKERS}"]["per_second"]
        figures[name] = figure | {"ratio": round(more / one, 2)}
    return figures


# ------------------------------------------------------------------------------ lock hand-over


async def hold(url: str) -> None:
    """Hold a person's lock until killed, or until told to let go."""
    store = await PostgresStorage.open(url)
    async with store.person(SOMEONE):
        print("holding", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    print("released", flush=True)
    await store.close()


async def hand_overs(url: str, rounds: int, *, kill: bool) -> list[float]:
    """Seconds from the holder's death (or its being told to let go) to the waiter's lock."""
    store = await PostgresStorage.open(url)
    samples = []
    try:
        for _ in range(rounds):
            holder = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.multiproc", "--hold", url, cwd=REPO,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert holder.stdout is not None and holder.stdin is not None
            assert await asyncio.wait_for(holder.stdout.readline(), 60) == b"holding\n"
            got = asyncio.get_running_loop().create_future()
            waiter = asyncio.ensure_future(wait_for_lock(store, got))
            await waiting_on_a_lock(url)
            let_go = time.perf_counter()
            if kill:
                holder.send_signal(signal.SIGKILL)
            else:
                holder.stdin.write(b"go\n")
                await holder.stdin.drain()
            samples.append(await asyncio.wait_for(got, 30) - let_go)
            await waiter
            await holder.wait()
    finally:
        await store.close()
    return samples


async def wait_for_lock(store: PostgresStorage, got: asyncio.Future[float]) -> None:
    async with store.person(SOMEONE):
        got.set_result(time.perf_counter())


async def waiting_on_a_lock(url: str) -> None:
    """Return once a session waits for an advisory lock (the waiter is in line)."""
    conn = await asyncpg.connect(url)
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        while not await conn.fetchval(waiting):  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.005)
    finally:
        await conn.close()


# ------------------------------------------------------------------------------ poller failover


async def failovers(url: str, rounds: int, *, kill: bool) -> list[float]:
    """Seconds from the poller's death (or SIGTERM) to the standby's first getUpdates."""
    samples = []
    logs: set[asyncio.Task[None]] = set()  # reading the bots' logs, so they never block
    async with FakeTelegram() as fake:
        with tempfile.TemporaryDirectory() as folder:
            env = bot_env(
                Path(folder), "http://127.0.0.1:9/v1", AGENTCORE_DB=url,
                TELEGRAM_TOKEN=fake.token, TELEGRAM_BASE_URL=fake.root,
                AGENTCORE_LOG_LEVEL="WARNING",
            )  # fmt: skip
            bots = [await started_bot(env, logs) for _ in range(2)]
            try:
                for _ in range(rounds):
                    leader = await poller(url, bots)
                    stopped = time.perf_counter()
                    leader.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
                    samples.append(await first_poll_after(fake, stopped) - stopped)
                    await leader.wait()
                    bots = [b for b in bots if b is not leader] + [await started_bot(env, logs)]
            finally:
                for bot in bots:
                    bot.kill()
                    await bot.wait()
    return samples


async def first_poll_after(fake: FakeTelegram, moment: float) -> float:
    def polled() -> list[float]:
        return [c.at for c in fake.polls if c.at > moment]

    await fake.wait_until(lambda: bool(polled()), 30)
    return polled()[0]


async def started_bot(
    env: dict[str, str], logs: set[asyncio.Task[None]]
) -> asyncio.subprocess.Process:
    """``python -m bots`` once it receives: polling or standing by (its startup line)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", env=env | {"AGENTCORE_LOG_LEVEL": "INFO"}, cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    while b"startup:" not in (line := await asyncio.wait_for(proc.stderr.readline(), 60)):
        assert line, "the bot ended before it started"
    reading = asyncio.create_task(drain(proc.stderr))
    logs.add(reading)
    reading.add_done_callback(logs.discard)
    return proc


async def drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def poller(
    url: str, bots: Sequence[asyncio.subprocess.Process]
) -> asyncio.subprocess.Process:
    """The process holding the Telegram poller role (once one does)."""
    while not (found := await holding(url, bots)):  # noqa: ASYNC110 (no event to await)
        await asyncio.sleep(0.01)
    return found[0]


async def holding(
    url: str, bots: Sequence[asyncio.subprocess.Process]
) -> list[asyncio.subprocess.Process]:
    holders = await postgres.lock_holders(url, ROLE_LOCKS, lock_key(POLLER))
    return [b for b in bots if f"agentcore {b.pid}" in holders]


# ------------------------------------------------------------------------------ the run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_server() as server:
        figures = await all_throughputs(server, args.people, args.messages, args.latency, args.cap)
        async with fresh(server) as url:
            figures["hand_over"] = {
                "after_kill": summary_ms(await hand_overs(url, args.rounds, kill=True)),
                "after_release": summary_ms(await hand_overs(url, args.rounds, kill=False)),
            }
        async with fresh(server) as url:
            figures["failover"] = {
                "after_kill": summary_ms(await failovers(url, args.failovers, kill=True)),
                "after_sigterm": summary_ms(await failovers(url, args.failovers, kill=False)),
            }
    return figures


def show(figures: dict[str, Any]) -> None:
    rows = []
    for name in ("zero", "zero_async", "slow"):
        f = figures[name]
        model = f"{f['model_latency_s']}s model, commit {f['synchronous_commit']}"
        wheres = [("SQLite, 1 process", "sqlite_1"), ("PostgreSQL, 1 process", "postgres_1"),
                  (f"PostgreSQL, {WORKERS} processes", f"postgres_{WORKERS}")]  # fmt: skip
        rows += [
            [model, where, r["messages"], r["seconds"], r["per_second"],
             r["bot_cpu_ms_per_message"], r["load_average"]]
            for where, key in wheres if (r := f.get(key))
        ]  # fmt: skip
    print_table(
        f"Throughput, {figures['people']} people at once (model calls: at most "
        f"{figures['zero']['cap_per_process']} at once per process)",
        ["model", "where", "messages", "seconds", "answered/s", "bot CPU ms/msg", "load"],
        rows,
    )
    for name in ("zero", "zero_async", "slow"):
        print(f"{WORKERS} processes vs 1 ({name}): {figures[name]['ratio']:.2f}x")
    print_table(
        "Hand-over and failover (ms)",
        ["what", "median", "p95", "max"],
        [
            [what, s["median_ms"], s["p95_ms"], s["max_ms"]]
            for what, s in (
                ("person lock, holder killed", figures["hand_over"]["after_kill"]),
                ("person lock, holder released it", figures["hand_over"]["after_release"]),
                ("Telegram poller, killed", figures["failover"]["after_kill"]),
                ("Telegram poller, SIGTERM", figures["failover"]["after_sigterm"]),
            )
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3, help="per person, zero-latency model")
    parser.add_argument("--latency", type=float, default=0.1, help="the slow model, seconds")
    parser.add_argument("--cap", type=int, default=8, help="model calls at once per process")
    parser.add_argument("--rounds", type=int, default=20, help="lock hand-overs measured")
    parser.add_argument("--failovers", type=int, default=5, help="poller failovers measured")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--hold", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        database, people, messages, latency, cap = args.worker
        asyncio.run(worker(database, json.loads(people), int(messages), float(latency), int(cap)))
        return 0
    if args.hold:
        asyncio.run(hold(args.hold))
        return 0
    if args.smoke:
        args.people, args.messages, args.rounds, args.failovers = 60, 2, 2, 1
    figures = asyncio.run(run(args))
    show(figures)
    print(f"wrote {write_json('multiproc', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
