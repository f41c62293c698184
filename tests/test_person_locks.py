"""PostgreSQL's per-person locks and roles between processes: a person's turn keeps the others
out, a holder whose connection went stops at once and writes nothing, and a process that stops
running loses its locks after ``stall`` seconds. (SQLite has one process per file; ``person`` is
trivial there.)"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.memory.blocks import default_blocks
from agentcore.memory.consolidation import INSTRUCTIONS as CONSOLIDATION
from agentcore.messages import Role
from agentcore.records import NewAgent, NewMessage, UserActivity
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.postgres.connection import PERSON_LOCKS, ROLE_LOCKS
from agentcore.storage.protocols import LockLost, PersonBusy
from agentcore.types import AgentKey, SystemEvent
from bots.compose import build_runtime
from tests import postgres
from tests.conftest import make_settings, message
from tests.process import REPO

ALICE, BOB = AgentKey("telegram", "alice"), AgentKey("telegram", "bob")
NOW = datetime.now(UTC)


@asynccontextmanager
async def two_processes(
    url: str, stall: float = 60.0
) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """Two stores with pools of their own, as two bot processes have."""
    first = await PostgresStorage.open(url, stall=stall)
    second = await PostgresStorage.open(url, stall=stall)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_persons_lock_keeps_the_other_processes_out_until_released(
    postgres_url: str,
) -> None:
    async with two_processes(postgres_url) as (mine, theirs):
        async with mine.person(ALICE):
            with pytest.raises(PersonBusy):
                async with theirs.person(ALICE, wait=False):
                    pass
            async with theirs.person(BOB, wait=False):
                pass  # another person is not held up
            waiting = asyncio.ensure_future(held_for(theirs, ALICE))
            await asyncio.sleep(0.05)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 10)  # the waiter gets it as it is released


async def held_for(store: PostgresStorage, key: AgentKey) -> bool:
    async with store.person(key):
        return True


async def test_a_holder_whose_connection_went_stops_at_once_and_writes_nothing(
    postgres_url: str,
) -> None:
    """The server ends the lock's connection (an operator, a failover): the holder's work is
    cancelled right away, whatever it awaits (a model call), and nothing more is written."""
    async with two_processes(postgres_url) as (mine, theirs):
        agent = await mine.create_agent(ALICE, "Alice", NOW, [])
        assert agent is not None
        with pytest.raises(LockLost):
            async with mine.person(ALICE) as held:
                await held.append_messages(agent.id, [NewMessage(Role.USER, "kept", NOW)])
                ending = asyncio.ensure_future(
                    postgres.end_lock_holders(postgres_url, PERSON_LOCKS)
                )
                await asyncio.sleep(30)  # a slow model call: cut short
                await held.append_messages(agent.id, [NewMessage(Role.USER, "lost", NOW)])
        assert len(await asyncio.wait_for(ending, 10)) == 1
        assert await asyncio.wait_for(held_for(theirs, ALICE), 10)  # free at once
        said = [m.content for m in await theirs.all_messages(agent.id)]
        assert said == ["kept"]


STOPPABLE = """
import asyncio, sys
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import LockLost
from agentcore.types import AgentKey

async def hold(store, user):
    async with store.person(AgentKey("telegram", user)):
        await asyncio.sleep(0)

async def main() -> None:
    store = await PostgresStorage.open(sys.argv[1], stall=float(sys.argv[2]))
    await asyncio.gather(*(hold(store, str(n)) for n in range(3)))  # idle turn connections
    try:
        async with store.person(AgentKey("telegram", "alice")):
            assert await store.take_role("telegram poller", wait=False) is not None
            print("holding", flush=True)
            await asyncio.Event().wait()
    except LockLost:
        print("lost", flush=True)
    async with store.person(AgentKey("telegram", "alice")):  # on new connections
        print("holding again", flush=True)
    await store.close()

asyncio.run(main())
"""


async def test_a_stopped_process_loses_its_locks_after_stall_seconds(postgres_url: str) -> None:
    """A process that stops running (SIGSTOP: paused, hung) keeps its sockets open, yet loses
    its person locks and roles once it was silent for ``stall`` seconds: a running process ends
    its sessions. Woken, it finds the lock gone and takes it again."""
    stall = 1.5
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STOPPABLE, postgres_url, str(stall),
        stdout=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"holding\n"
        holder.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        async with two_processes(postgres_url, stall) as (other, _):
            with pytest.raises(PersonBusy):  # a stop does not free the lock by itself
                async with other.person(ALICE, wait=False):
                    pass
            assert await asyncio.wait_for(held_for(other, ALICE), stall + 10)
            role = await asyncio.wait_for(other.take_role("telegram poller", wait=True), 10)
            assert role is not None
            waited = time.monotonic() - stopped
            await role.release()
        assert waited >= stall / 2, waited  # held while its keep-alive could have run
        assert await postgres.lock_holders(postgres_url, ROLE_LOCKS) == []
        holder.send_signal(signal.SIGCONT)  # it wakes, finds its lock gone, and goes on
        lines = [await asyncio.wait_for(holder.stdout.readline(), 30) for _ in range(2)]
        assert lines == [b"lost\n", b"holding again\n"]
        assert await asyncio.wait_for(holder.wait(), 30) == 0
    finally:
        if holder.returncode is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            await holder.wait()


# ------------------------------------------------- what runs beside a person's turns


async def until_waiting_for_a_lock(url: str, task: asyncio.Future[Any]) -> None:
    """Return once a session waits for an advisory lock; ``task`` must not finish first."""
    conn = await asyncpg.connect(url)
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        while not await conn.fetchval(waiting):
            assert not task.done(), task.result()  # it must wait for the lock, not go ahead
    finally:
        await conn.close()


async def test_a_reminders_turn_and_a_consolidation_wait_for_the_persons_turn_elsewhere(
    postgres_url: str,
) -> None:
    """A reminder's turn and the edits of a consolidation take the person's lock in the database,
    as a turn does: while another process runs a turn of theirs, they wait."""
    clock = ManualClock(NOW)
    answers = iter(["Okay.", "Time to walk Miso!"])

    async def model(request: LLMRequest) -> LLMResponse:
        if request.messages[0].content == CONSOLIDATION:
            return reply(json.dumps({"blocks": {"human": {"add": ["Has a dog, Miso"]}}}))
        return reply(next(answers))

    settings = make_settings(consolidation={"enabled": True})
    async with two_processes(postgres_url) as (mine, theirs):
        runtime = build_runtime(settings, mine, FunctionLLM(model), clock)
        said = await runtime.handle(message(clock, "My dog is Miso", "telegram:alice"))
        assert said.text == "Okay."
        clock.advance(timedelta(hours=5))  # the session ended
        event = SystemEvent(ALICE, "scheduled: walk Miso", clock.now())
        async with theirs.person(ALICE):  # their turn, in another process
            reminding = asyncio.ensure_future(runtime.run_event(event))
            await until_waiting_for_a_lock(postgres_url, reminding)
        assert await asyncio.wait_for(reminding, 10) == "Time to walk Miso!"
        async with theirs.person(ALICE):
            consolidating = asyncio.ensure_future(runtime.consolidate_ended())
            await until_waiting_for_a_lock(postgres_url, consolidating)
        assert await asyncio.wait_for(consolidating, 10) == 1
        agent = await mine.load_agent(ALICE)
        assert agent is not None
        human = {b.label: b.value for b in await mine.list_blocks(agent.id)}["human"]
        assert "Miso" in human


async def test_a_reminders_turn_leaves_a_turn_left_open_to_the_persons_next_turn(
    postgres_url: str,
) -> None:
    """A process died after its turn took up Alice's message, before a reply: a reminder's turn
    under her lock answers the reminder only; her stopped turn is still to be finished (its
    reply would otherwise be the reminder's, sent as the answer to her message)."""
    clock = ManualClock(NOW)
    settings = make_settings()
    async with two_processes(postgres_url) as (mine, _):
        said = message(clock, "what's the time?", "telegram:alice")
        pending = await mine.add_pending(said, NOW)
        assert pending is not None
        specs = tuple(default_blocks(settings.agent.memory))
        started = await mine.start_agent(
            ALICE, pending, NewAgent("alice", NOW, specs), UserActivity(NOW, 1, "alice")
        )
        assert started is not None  # and here the process died
        runtime = build_runtime(settings, mine, FunctionLLM(lambda _: reply("Walk Miso!")), clock)
        event = SystemEvent(ALICE, "scheduled: walk Miso", NOW)
        assert await runtime.run_event(event) == "Walk Miso!"
        stopped = await mine.open_turn(ALICE)
        assert stopped is not None and stopped.reply is None
