"""Several ``python -m bots`` processes on one PostgreSQL database, as people will run them.

Three processes: Discord's three shards split over two of them (0 and 1 in one, 2 in another),
Telegram through the one process elected to poll (the others stand by), and a model with
latency that answers each turn with the person's token and the sequence numbers of the messages
it answers. People on Discord write alternately in a DM (shard 0) and in a server on shard 2, so
two processes receive each person's messages; the faults: a process killed with a model call in
flight (and restarted, as a supervisor would), a process whose database connection is ended, a
process paused (SIGSTOP) past ``stall_seconds`` and resumed, and the poller killed.

Then: every message is answered, none twice (beyond what a kill between sending and noting a
reply as sent can cause, counted), each person's replies come in order and hold only their own
token, no two model calls for one person overlap (a call its process gave up as it lost the
person's lock does not count: its answer is never used), and nothing is left taken up. The same
checks fail with the per-person lock off (the negative control), and hold for Telegram by
webhook, with three processes behind a load balancer and one of them killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from agentcore.memory.consolidation import INSTRUCTIONS as CONSOLIDATION
from agentcore.runtime import STORAGE_FAILED
from agentcore.storage.postgres.connection import PERSON_LOCKS, ROLE_LOCKS, lock_key
from bots.telegram.adapter import POLLER
from bots.telegram.webhook import SECRET_HEADER, webhook_secret
from tests import postgres
from tests.fakes.discord_server import FakeDiscord, snowflake, user_payload
from tests.fakes.openai_server import Completion, FakeOpenAI, since_last_answer, system
from tests.fakes.telegram_server import FakeTelegram, User
from tests.process import REPO, bot_env

LATENCY = (0.05, 0.25)  # seconds a model call takes (uniform)
STALL = 3.0  # the processes' stall_seconds: a paused process loses its locks after this
MESSAGES = 6  # per person
TOKEN_RE = re.compile(r"tok=(\w+)")
REPLY_RE = re.compile(r"tok=([\w,]*) seq=([\d,]*)")
# The start of a streamed answer, all a process killed while showing it had shown (the whole
# answer follows in a message of its own).
CUT_RE = re.compile(r"tok=[\w,]*( seq=)?")
DISCORD_SHARDS = {"p1": "0,1", "p2": "2"}
PROCESSES = ("p1", "p2", "p3")  # each process names its model after itself


# ------------------------------------------------------------------------------ the model


@dataclass
class ModelCall:
    person: str
    process: str  # the model name the process was given
    start: float
    end: float
    abandoned: bool  # the process went away or gave the call up before the answer


class EchoModel:
    """Answers a turn with the tokens and sequence numbers of the messages it answers (the
    person's messages since the last answer), after a random latency; records each call."""

    def __init__(self, latency: tuple[float, float] = LATENCY) -> None:
        self.calls: list[ModelCall] = []
        self.started: Counter[str] = Counter()  # person -> calls begun
        self._latency = latency
        self._random = random.Random(17)
        self._running: Counter[str] = Counter()  # process -> calls in flight
        self._changed = asyncio.Event()

    async def __call__(self, body: dict[str, Any]) -> Completion:
        if system(body) == CONSOLIDATION:  # a session read after it ended: not a turn (its
            return Completion(content="{}")  # call takes no lock; its edits are applied under it)
        said = since_last_answer(body)
        tokens = sorted({t for text in said for t in TOKEN_RE.findall(text)})
        seqs = [n for text in said for n in re.findall(r"seq=(\d+)", text)]
        process, start, abandoned = body["model"], time.perf_counter(), True
        self._running[process] += 1
        self.started.update(tokens)
        self._touch()
        try:
            await asyncio.sleep(self._random.uniform(*self._latency))  # the model thinking
            abandoned = False
        finally:
            self._running[process] -= 1
            end = time.perf_counter()
            self.calls += [ModelCall(t, process, start, end, abandoned) for t in tokens]
            self._touch()
        return Completion(content=f"tok={','.join(tokens)} seq={','.join(seqs)}")

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def in_flight(self, process: str) -> None:
        """Return while a call from ``process`` is in flight."""
        await self._until(lambda: self._running[process] > 0)

    async def began(self, person: str, calls: int) -> None:
        """Return once more than ``calls`` calls for ``person`` began."""
        await self._until(lambda: self.started[person] > calls)

    async def _until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(60):
            while not condition():
                await self._changed.wait()


# ------------------------------------------------------------------------------ processes


@dataclass
class BotProcess:
    """One ``python -m bots``, its log read as it runs."""

    name: str
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    log: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.starts += 1
        self.started = asyncio.Event()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots", env=self.env, cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read(self.proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := (await proc.stderr.readline()).decode():
            self.log.append(line)
            if "startup:" in line:
                self.started.set()

    async def ready(self) -> None:
        assert self.proc is not None
        exited = asyncio.ensure_future(self.proc.wait())
        started = asyncio.ensure_future(self.started.wait())
        await asyncio.wait([exited, started], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        started.cancel()
        assert self.started.is_set(), f"{self.name} did not start:\n{''.join(self.log)}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def session(self) -> str:
        """Its sessions' name in pg_stat_activity."""
        return f"agentcore {self.pid}"

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def finish(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.proc is not None and self._reader is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 60)
        await self._reader
        return code


def troubles(*bots: BotProcess) -> str:
    """The warnings and errors the processes logged (for a failed assertion's message)."""
    return "".join(
        f"{bot.name}: {line}"
        for bot in bots
        for line in bot.log
        if "WARNING" in line or "ERROR" in line
    )


@contextlib.asynccontextmanager
async def processes(*bots: BotProcess) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for bot in bots:
            if bot.proc is not None and bot.proc.returncode is None:
                bot.proc.send_signal(signal.SIGCONT)
                bot.proc.kill()
                await bot.proc.wait()


def shared_env(tmp_path: Path, url: str, llm: FakeOpenAI, **extra: str) -> dict[str, str]:
    return bot_env(
        tmp_path,
        llm.base_url,
        AGENTCORE_DB=url,
        AGENTCORE_LOG_LEVEL="INFO",
        AGENTCORE_LLM__TIMEOUT_SECONDS="2",
        AGENTCORE_LLM__MAX_RETRIES="0",
        AGENTCORE_STORAGE__STALL_SECONDS=str(STALL),
        AGENTCORE_STORAGE__POOL_SIZE="10",
        AGENTCORE_RUNTIME__HELD_ANSWER_SECONDS="1",  # also how often orphans are looked for
        AGENTCORE_RUNTIME__RATE_LIMIT_PER_MINUTE="10000",
        **extra,
    )


def discord_env(fake: FakeDiscord, shards: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "AGENTCORE_DISCORD__SHARD_COUNT": str(fake.shards),
        "AGENTCORE_DISCORD__SHARD_IDS": shards,
        "AGENTCORE_DISCORD__IDENTIFY_INTERVAL_SECONDS": "0.2",
    }


def telegram_env(fake: FakeTelegram) -> dict[str, str]:
    return {"TELEGRAM_TOKEN": fake.token, "TELEGRAM_BASE_URL": fake.root}


# ------------------------------------------------------------------------------ traffic


@dataclass
class Person:
    token: str
    channels: list[int]  # where their replies arrive (Discord: DM and server; Telegram: chat)
    sent: list[int] = field(default_factory=list)  # sequence numbers sent


class DiscordPeople:
    """People on Discord who write alternately in a DM (shard 0) and in the server (shard 2),
    each message once the one before it is stored and being answered (the model was called:
    so it arrives while a turn of theirs runs, in the other process)."""

    def __init__(self, fake: FakeDiscord, model: EchoModel, url: str, count: int) -> None:
        self.fake = fake
        self.sending = asyncio.Lock()  # held while a message is sent (see ``shard_down``)
        self._model = model
        self._url = url
        self.users = [user_payload(snowflake(), f"d{n}") for n in range(count)]
        self.people = {
            u["username"]: Person(u["username"], [int(u["id"]) + 1, fake.channel_id])
            for u in self.users
        }

    async def talk_from(self, seqs: Iterable[int]) -> None:
        """Everyone sends the messages numbered ``seqs`` (odd ones by DM, even in the server)."""
        numbers = list(seqs)
        await asyncio.gather(*(self._one(user, numbers) for user in self.users))

    async def _one(self, user: dict[str, Any], seqs: list[int]) -> None:
        person = self.people[user["username"]]
        for seq in seqs:
            text = f"tok={person.token} seq={seq}"
            calls = self._model.started[person.token]
            async with self.sending:
                if seq % 2:
                    await self._when_connected(0)
                    await self.fake.send_message(
                        author=user, content=text, channel_id=int(user["id"]) + 1
                    )
                else:
                    await self._when_connected(2)
                    mention = f"<@{self.fake.bot_id}> "
                    await self.fake.send_message(
                        author=user, content=mention + text, channel_id=self.fake.channel_id,
                        guild=True, mentions=[self.fake.bot],
                    )  # fmt: skip
            person.sent.append(seq)
            await stored(self._url, "discord", user["id"], seq)
            await self._model.began(person.token, calls)

    async def _when_connected(self, shard: int) -> None:
        await self.fake.wait_until(lambda: self.fake.connected(shard), within=60)

    @contextlib.asynccontextmanager
    async def shard_down(self, shard: int) -> AsyncIterator[None]:
        """Nothing is sent while the block kills the process running ``shard``, until the fake
        saw its connection close: an event sent into a dying connection is lost by Discord too
        (a new session does not get it), and a person would send it again."""
        async with self.sending:
            yield
            await self.fake.wait_until(lambda: not self.fake.connected(shard), within=30)

    def replies(self) -> dict[str, list[str]]:
        """Each person's replies, in the order they arrived."""
        posts = sorted(
            (r for channel in {c for p in self.people.values() for c in p.channels}
             for r in self.fake.posted(channel)),
            key=lambda r: r.at,
        )  # fmt: skip
        now = [self.fake.reads_now(r) for r in posts]  # a streamed reply reads as finished
        return by_person(self.people, [text for text in now if text is not None])


class TelegramPeople:
    def __init__(self, fake: FakeTelegram, count: int, first_id: int = 5001) -> None:
        self.fake = fake
        self.users = [User(first_id + n, f"t{n}") for n in range(count)]
        self.people = {u.first_name: Person(u.first_name, [u.id]) for u in self.users}

    def send(self, seq: int) -> None:
        for user in self.users:
            self.fake.private(user, f"tok={user.first_name} seq={seq}")
            self.people[user.first_name].sent.append(seq)

    def replies(self) -> dict[str, list[str]]:
        posts = sorted((s for u in self.users for s in self.fake.to_chat(u.id)), key=lambda s: s.at)
        return by_person(self.people, [s.plain for s in posts])


def by_person(people: dict[str, Person], texts: list[str]) -> dict[str, list[str]]:
    """Replies sorted to the person whose token they name first (any others are foreign)."""
    found: dict[str, list[str]] = {token: [] for token in people}
    for text in texts:
        match = REPLY_RE.search(text)
        owner = match[1].split(",")[0] if match else ""
        found.setdefault(owner, []).append(text)
    return found


async def stored(url: str, platform: str, user_id: str, count: int) -> None:
    """Wait until ``count`` of the person's messages are in the inbox."""
    conn = await asyncpg.connect(url)
    try:
        mine = "SELECT count(*) FROM inbox WHERE platform = $1 AND user_id = $2"
        await until(lambda: conn.fetchval(mine, platform, user_id), lambda n: n >= count)
    finally:
        await conn.close()


def answered(people: dict[str, Person], replies: dict[str, list[str]]) -> bool:
    return all(set(p.sent) <= set(seqs_of(replies.get(t, []))) for t, p in people.items())


def seqs_of(texts: list[str]) -> list[int]:
    return [int(n) for text in texts if (m := REPLY_RE.search(text)) for n in m[2].split(",") if n]


# ------------------------------------------------------------------------------ the checks


@dataclass
class Verdict:
    unanswered: dict[str, list[int]]
    answered_twice: dict[str, list[int]]
    out_of_order: dict[str, list[int]]
    foreign: list[str]  # replies naming someone else's token
    failure_notices: list[str]  # the short "something went wrong" reply a dropped turn gets
    cut_short: list[str]  # streamed answers a killed process had shown only the start of
    overlapping: list[tuple[ModelCall, ModelCall]]
    left_open: int  # inbox rows not finished
    abandoned_calls: int

    def failures(
        self,
        duplicates_allowed: int = 0,
        notices_allowed: int = 0,
        overlap_allowed: Callable[[ModelCall, ModelCall], bool] = lambda a, b: False,
    ) -> list[str]:
        """What went wrong, beyond what the faults may cause: ``duplicates_allowed`` replies
        sent twice or cut short, ``notices_allowed`` failure notices, and overlapping calls
        for which ``overlap_allowed(earlier, later)`` holds."""
        twice = sum(len(v) for v in self.answered_twice.values())
        overlapping = [(a, b) for a, b in self.overlapping if not overlap_allowed(a, b)]
        notices = self.failure_notices
        failed = [
            f"unanswered {self.unanswered}" if any(self.unanswered.values()) else "",
            f"answered twice {self.answered_twice}" if twice > duplicates_allowed else "",
            f"cut short {self.cut_short}" if len(self.cut_short) > duplicates_allowed else "",
            f"out of order {self.out_of_order}" if any(self.out_of_order.values()) else "",
            f"foreign tokens {self.foreign}" if self.foreign else "",
            f"failure notices {notices}" if len(notices) > notices_allowed else "",
            f"{len(overlapping)} overlapping calls {overlapping}" if overlapping else "",
            f"{self.left_open} messages left open" if self.left_open else "",
        ]
        return [f for f in failed if f]


async def judge(
    people: dict[str, Person], replies: dict[str, list[str]], model: EchoModel, url: str
) -> Verdict:
    unanswered, twice, disorder = {}, {}, {}
    for token, person in people.items():
        seqs = seqs_of(replies.get(token, []))
        counts = Counter(seqs)
        unanswered[token] = sorted(set(person.sent) - set(seqs))
        twice[token] = sorted(s for s, n in counts.items() if n > 1)
        first_seen = list(dict.fromkeys(seqs))  # a repeat is counted above, not here
        disorder[token] = [b for a, b in itertools.pairwise(first_seen) if b < a]
    cut_short = [text for texts in replies.values() for text in texts if CUT_RE.fullmatch(text)]
    notices = [text for texts in replies.values() for text in texts if text == STORAGE_FAILED]
    foreign = [
        text for token, texts in replies.items() for text in texts
        if ((m := REPLY_RE.search(text)) is None or set(m[1].split(",")) != {token})
        and text not in cut_short and text != STORAGE_FAILED
    ]  # fmt: skip
    used = sorted((c for c in model.calls if not c.abandoned), key=lambda c: (c.person, c.start))
    overlapping = [
        (a, b) for a, b in itertools.pairwise(used) if a.person == b.person and b.start < a.end
    ]
    conn = await asyncpg.connect(url)
    try:
        left_open = await conn.fetchval("SELECT count(*) FROM inbox WHERE NOT finished")
    finally:
        await conn.close()
    abandoned = sum(c.abandoned for c in model.calls)
    return Verdict(
        unanswered, twice, disorder, foreign, notices, cut_short, overlapping, left_open, abandoned
    )


async def everyone_answered(*groups: DiscordPeople | TelegramPeople) -> None:
    """Wait until every message sent so far has an answer (or give up after a minute: the
    verdict then says which have none)."""
    for group in groups:
        with contextlib.suppress(TimeoutError):
            await group.fake.wait_until(partial(group_answered, group), within=60)


def group_answered(group: DiscordPeople | TelegramPeople) -> bool:
    return answered(group.people, group.replies())


async def until(
    get: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], within: float = 60
) -> Any:
    """Ask ``get`` (the database, which has no event to await) until its answer passes
    ``check``; ``TimeoutError`` after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check(found := await get()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return found


async def poller(url: str, bots: dict[str, BotProcess]) -> str:
    """The name of the process holding the Telegram poller role ('' if none)."""
    [holder] = await until(
        lambda: postgres.lock_holders(url, ROLE_LOCKS, lock_key(POLLER)), lambda h: len(h) == 1
    )
    return next((name for name, bot in bots.items() if bot.session == holder), "")


async def locks_gone(url: str, session: str) -> None:
    """Wait until the process named ``session`` in the database holds no lock."""
    try:
        for space in (PERSON_LOCKS, ROLE_LOCKS):
            await until(partial(postgres.lock_holders, url, space), lambda h: session not in h)
    except TimeoutError:
        conn = await asyncpg.connect(url)
        try:
            held = await conn.fetch(
                "SELECT l.classid, l.objid, l.objsubid, a.state, a.wait_event, a.query "
                "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND a.application_name = $1",
                session,
            )
        finally:
            await conn.close()
        raise AssertionError(f"{session} still holds {[dict(r) for r in held]}") from None


async def a_second_process_for_a_shard_refuses(env: dict[str, str]) -> None:
    extra = BotProcess("extra", env | {"AGENTCORE_DISCORD__SHARD_IDS": "1"})
    await extra.start()
    assert extra.proc is not None
    assert await asyncio.wait_for(extra.proc.wait(), 60) == 1
    await extra.finish()
    errors = [line for line in extra.log if " ERROR " in line]
    assert len(errors) == 1 and "shard 1 of 3 is already run by another process" in errors[0]
    assert "Traceback" not in "".join(extra.log)


@contextlib.asynccontextmanager
async def balancer(ports: list[int]) -> AsyncIterator[str]:
    """A round-robin load balancer in front of the processes' webhooks (502 if one is down);
    the URL Telegram is given."""
    turn = itertools.cycle(ports)
    async with aiohttp.ClientSession() as session:

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
            target = f"http://127.0.0.1:{next(turn)}{request.path}"
            try:
                async with session.post(
                    target,
                    data=await request.read(),
                    headers=headers | {"Content-Type": "application/json"},
                ) as answer:
                    return web.Response(status=answer.status, body=await answer.read())
            except aiohttp.ClientError:
                return web.Response(status=502)

        app = web.Application()
        app.router.add_post("/{tail:.*}", forward)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}/telegram/updates"
        finally:
            await runner.cleanup()


async def post_to(url: str, body: Any, headers: dict[str, str] | None = None) -> int:
    """What a request (``body``: JSON, or bytes as they are) gets from every process (the
    balancer rotates): its one status."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session:
        statuses = set()
        for _ in range(3):
            async with session.post(url, data=content, headers=headers) as answer:
                statuses.add(answer.status)
    [status] = statuses
    return status


async def settled(url: str) -> None:
    """Wait until no message is left waiting or taken up unfinished (or give up after 30 s:
    the verdict then says what is left)."""
    conn = await asyncpg.connect(url)
    try:
        left = "SELECT count(*) FROM inbox WHERE NOT finished"
        with contextlib.suppress(TimeoutError):
            await until(lambda: conn.fetchval(left), lambda n: n == 0, within=30)
    finally:
        await conn.close()


# ------------------------------------------------------------------------------ the tests


async def test_three_processes_answer_everyone_once_and_in_order_through_faults(
    tmp_path: Path, postgres_url: str
) -> None:
    model = EchoModel()
    async with (
        FakeOpenAI(model, models=PROCESSES, cancel_on_disconnect=True) as llm,
        FakeDiscord(shards=3, guild_shard=2) as discord,
        FakeTelegram() as telegram,
    ):
        base = shared_env(tmp_path, postgres_url, llm) | telegram_env(telegram)
        p1, p2 = (
            BotProcess(name, base | discord_env(discord, shards) | {"AGENTCORE_MODEL": name})
            for name, shards in DISCORD_SHARDS.items()
        )
        p3 = BotProcess("p3", base | {"AGENTCORE_MODEL": "p3"})
        bots = {bot.name: bot for bot in (p1, p2, p3)}
        async with processes(p1, p2, p3):
            await p1.start()  # the first to start polls Telegram; the others stand by
            await p1.ready()
            await asyncio.gather(p2.start(), p3.start())
            await asyncio.gather(p2.ready(), p3.ready())
            assert await poller(postgres_url, bots) == "p1"
            await a_second_process_for_a_shard_refuses(p1.env)

            on_discord = DiscordPeople(discord, model, postgres_url, 3)
            on_telegram = TelegramPeople(telegram, 3)

            async def phase(first_seq: int, fault: Callable[[], Awaitable[None]]) -> None:
                """Two messages from everyone, and a fault while they are answered."""
                seqs = [first_seq, first_seq + 1]
                traffic = asyncio.ensure_future(on_discord.talk_from(seqs))
                for seq in seqs:
                    on_telegram.send(seq)
                await fault()
                await traffic
                await everyone_answered(on_discord, on_telegram)

            async def kill_p2_mid_call() -> None:
                await model.in_flight("p2")
                async with on_discord.shard_down(2):
                    p2.send(signal.SIGKILL)
                    assert await p2.finish() == -signal.SIGKILL
                await p2.start()  # as a supervisor would
                await p2.ready()

            async def end_p1s_lock_connections() -> None:
                ended: list[int] = []
                while not ended:  # a turn may end between the two lines; then the next one
                    await model.in_flight("p1")
                    ended = await postgres.end_lock_holders(postgres_url, PERSON_LOCKS, p1.pid)

            async def pause_the_poller_p1_mid_call() -> None:
                await model.in_flight("p1")
                p1.send(signal.SIGSTOP)
                await locks_gone(postgres_url, p1.session)  # after stall_seconds
                assert await poller(postgres_url, bots) in {"p2", "p3"}  # a standby took over
                p1.send(signal.SIGCONT)  # p1 steps down (its poll gets 409), goes on answering

            async def kill_the_poller_mid_call() -> None:
                leader = bots[await poller(postgres_url, bots)]
                await model.in_flight(leader.name)
                runs_a_shard = leader is p2  # p1 gave the role up while paused
                async with on_discord.shard_down(2) if runs_a_shard else contextlib.nullcontext():
                    leader.send(signal.SIGKILL)
                    assert await leader.finish() == -signal.SIGKILL
                others = {name for name in bots if name != leader.name}
                await until(partial(poller, postgres_url, bots), lambda name: name in others)
                await leader.start()  # restarted, it stands by
                await leader.ready()

            faults = [
                kill_p2_mid_call,
                end_p1s_lock_connections,
                pause_the_poller_p1_mid_call,
                kill_the_poller_mid_call,
            ]
            for n, fault in enumerate(faults):
                await phase(1 + 2 * n, fault)
            await settled(postgres_url)
            people = on_discord.people | on_telegram.people
            replies = on_discord.replies() | on_telegram.replies()
            verdict = await judge(people, replies, model, postgres_url)
            codes = [await bot.finish() for bot in bots.values()]
    # A kill between sending a reply and noting it sent can send it twice: at most once a fault.
    # A turn whose lock connection is ended (by the test, or by the other processes while p1 is
    # paused) gets the short failure notice the issue asks for, at most once a fault; and p1's
    # model call already in flight may still finish while the next holder's starts (the
    # documented limit: nothing p1 writes after losing the lock is stored). Only p1's, and only
    # then: the negative control below shows what overlaps look like without the lock.
    logs = troubles(p1, p2, p3)
    failures = verdict.failures(
        duplicates_allowed=len(faults),
        notices_allowed=len(faults),
        overlap_allowed=lambda earlier, later: earlier.process == "p1" and later.process != "p1",
    )
    assert failures == [], f"{verdict}\n{logs}"
    assert codes == [0] * len(codes), logs
    # Every IDENTIFY waited its turn: p1's two shards and p2's, starting together, and p2's again
    # after each restart (p1 resumed its sessions after the pause; the refused process had none).
    identified = sorted(at for _, at in discord.identified)
    assert len(identified) == 2 + p2.starts
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(identified)), identified


async def test_without_the_per_person_lock_the_same_checks_fail(
    tmp_path: Path, postgres_url: str
) -> None:
    """The negative control: the same people and checks, two processes, the lock off (and a
    slower model, so a turn still runs when the next message reaches the other process)."""
    model = EchoModel(latency=(0.5, 0.7))
    async with (
        FakeOpenAI(model, models=PROCESSES, cancel_on_disconnect=True) as llm,
        FakeDiscord(shards=3, guild_shard=2) as discord,
    ):
        base = shared_env(tmp_path, postgres_url, llm, AGENTCORE_STORAGE__PERSON_LOCKS="false")
        p1, p2 = (
            BotProcess(name, base | discord_env(discord, shards) | {"AGENTCORE_MODEL": name})
            for name, shards in DISCORD_SHARDS.items()
        )
        async with processes(p1, p2):
            await asyncio.gather(p1.start(), p2.start())
            await asyncio.gather(p1.ready(), p2.ready())
            on_discord = DiscordPeople(discord, model, postgres_url, 3)
            await on_discord.talk_from(range(1, 5))
            await everyone_answered(on_discord)
            await settled(postgres_url)
            verdict = await judge(on_discord.people, on_discord.replies(), model, postgres_url)
            await p1.finish()
            await p2.finish()
    assert verdict.overlapping, verdict  # one person's turns ran at once in two processes
    assert verdict.failures() != []


async def test_telegram_by_webhook_behind_a_load_balancer(
    tmp_path: Path, postgres_url: str
) -> None:
    """Three processes serve the webhook behind a round-robin balancer; Telegram sends each
    chat's updates one at a time and again after anything but a 2xx. One process is killed
    with a model call in flight: the balancer's 502s make Telegram send to the others."""
    model = EchoModel()
    ports = [postgres.free_port() for _ in range(3)]
    async with (
        FakeOpenAI(model, models=PROCESSES, cancel_on_disconnect=True) as llm,
        FakeTelegram() as telegram,
        balancer(ports) as url,
    ):
        base = shared_env(tmp_path, postgres_url, llm) | telegram_env(telegram)
        workers = [
            BotProcess(f"w{n}", base | {
                "AGENTCORE_MODEL": f"w{n}",
                "AGENTCORE_TELEGRAM__WEBHOOK_URL": url,
                "AGENTCORE_TELEGRAM__WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            })
            for n, port in enumerate(ports)
        ]  # fmt: skip
        async with processes(*workers):
            await asyncio.gather(*(w.start() for w in workers))
            await asyncio.gather(*(w.ready() for w in workers))
            assert telegram.webhook is not None and telegram.webhook[0] == url
            assert telegram.polls == []
            assert await post_to(url, {"update_id": 1}) == 401  # not from Telegram
            secret = {SECRET_HEADER: webhook_secret(telegram.token)}
            assert await post_to(url, b"{not json", secret) == 400
            assert await post_to(url, b'"an update?"', secret) == 400
            on_telegram = TelegramPeople(telegram, 4)
            for seq in (1, 2, 3):
                on_telegram.send(seq)
            await model.in_flight("w1")
            workers[1].send(signal.SIGKILL)
            assert await workers[1].finish() == -signal.SIGKILL
            for seq in (4, 5, 6):
                on_telegram.send(seq)
            await everyone_answered(on_telegram)
            await settled(postgres_url)
            verdict = await judge(on_telegram.people, on_telegram.replies(), model, postgres_url)
            codes = [await w.finish() for w in (workers[0], workers[2])]
    assert verdict.failures(duplicates_allowed=1) == [], f"{verdict}\n{troubles(*workers)}"
    assert codes == [0, 0], troubles(*workers)
    assert any(post.status == 502 for post in telegram.posts)  # it did send some again
