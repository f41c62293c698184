"""PostgreSQL's per-person locks and roles between processes: a person's turn keeps the others
out, a holder whose connection went stops at once and writes nothing, and a process that stops
running loses its locks after ``stall`` seconds. (SQLite has one process per file; ``person`` is
trivial there.)"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from agentcore.messages import Role
from agentcore.records import NewMessage
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.postgres.connection import PERSON_LOCKS, ROLE_LOCKS
from agentcore.storage.protocols import LockLost, PersonBusy
from agentcore.types import AgentKey
from tests import postgres
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
