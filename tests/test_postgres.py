"""PostgreSQL as people will run it: the real ``python -m bots`` process on a database URL, the
ways a database URL can be wrong, processes starting together, and a connection that drops in
the middle of a turn. (Every storage method is covered on PostgreSQL by tests/contract/.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.memory.consolidation import INSTRUCTIONS as CONSOLIDATION
from agentcore.messages import Role
from agentcore.records import NewMessage
from agentcore.runtime import STORAGE_FAILED
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.schema import migration_files
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests import postgres
from tests.conftest import make_settings, message
from tests.contract.test_storage_contract import T0
from tests.fakes.openai_server import Completion, FakeOpenAI, last_user, since_last_answer, system
from tests.process import bot_env, run_bot
from tests.test_admin_cli import admin


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def password_of(url: str) -> str:
    password = urlsplit(url).password
    assert password, "the test server must ask for a password"
    return password


async def test_the_bot_runs_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    async with FakeOpenAI(lambda body: Completion(content=f"echo: {last_user(body)}")) as model:
        env = bot_env(tmp_path, model.base_url, AGENTCORE_DB=postgres_url)
        code, out, err = await run_bot("hello\nagain\n", env, tmp_path)
        assert (code, out) == (0, "echo: hello\necho: again\n"), err
        assert password_of(postgres_url) not in err
        assert not (tmp_path / "bot.db").exists()  # nothing fell back to SQLite
    store = await PostgresStorage.open(postgres_url)
    try:
        [summary] = await store.list_agents(10)
        assert summary.message_count == 4
        assert [run.total_ms > 0 for run in await store.recent_startups(5)] == [True]
    finally:
        await store.close()


async def test_bots_sharing_a_database_take_one_persons_turns_one_at_a_time(
    tmp_path: Path, postgres_url: str
) -> None:
    """Any number of bot processes may share a PostgreSQL database: two terminal bots for the
    same person answer every line once, and that person's model calls never overlap (the
    per-person lock); the operator CLI runs beside them."""
    calls: list[tuple[float, float]] = []

    async def model(body: dict[str, Any]) -> Completion:
        if system(body) == CONSOLIDATION:  # at shutdown; called without the lock by design
            return Completion(content="{}")
        started = time.perf_counter()
        await asyncio.sleep(0.05)  # the model's latency: a window in which turns could overlap
        calls.append((started, time.perf_counter()))
        return Completion(content=" | ".join(since_last_answer(body)))

    async with FakeOpenAI(model) as server:
        env = bot_env(tmp_path, server.base_url, AGENTCORE_DB=postgres_url)
        said = {side: [f"{side}{n}" for n in range(6)] for side in "ab"}
        runs = [run_bot("".join(f"{t}\n" for t in said[s]), env, tmp_path, "--user", "brad")
                for s in "ab"]  # fmt: skip
        results = await asyncio.gather(*runs, admin(env, "users"))
    [(code_a, out_a, err_a), (code_b, out_b, err_b), (admin_code, _, _)] = results
    assert (code_a, code_b, admin_code) == (0, 0, 0), err_a + err_b
    answered = [t for line in (out_a + out_b).splitlines() for t in line.split(" | ")]
    assert sorted(answered) == sorted(said["a"] + said["b"])  # each line once
    calls.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(calls)), calls
    assert password_of(postgres_url) not in err_a + err_b


async def newer_schema(server: str) -> str:
    """A database of its own, as a newer version of the bot would leave it."""
    url = await postgres.fresh_database(server)
    await (await PostgresStorage.open(url)).close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)")
    finally:
        await conn.close()
    return url


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("malformed", "storage.path"),
        ("refused", "connection refused"),
        ("wrong password", "password authentication failed"),
        ("no such database", "does not exist"),
        ("newer schema", "newer than this program"),
    ],
)
async def test_a_bad_database_stops_the_start_with_one_line(
    tmp_path: Path, postgres_server: str, postgres_url: str, case: str, expected: str
) -> None:
    secret = password_of(postgres_url)
    url = {
        "malformed": with_password(postgres_url, secret).replace(
            f"{urlsplit(postgres_url).port}", "port"
        ),
        "refused": postgres_url.replace(
            f":{urlsplit(postgres_url).port}/", f":{postgres.free_port()}/"
        ),
        "wrong password": with_password(postgres_url, "not-" + secret),
        "no such database": postgres.database_url(postgres_url, "no_such_database"),
    }.get(case) or await newer_schema(postgres_server)
    try:
        async with FakeOpenAI(lambda body: Completion(content="never asked")) as model:
            env = bot_env(tmp_path, model.base_url, AGENTCORE_DB=url)
            code, out, err = await run_bot("hello\n", env, tmp_path)
    finally:
        if case == "newer schema":
            await postgres.drop_database(postgres_server, url)
    assert (code, out) == (2, ""), err
    [line] = [line for line in err.splitlines() if line.strip()]
    assert expected in line, line
    assert secret not in err and "Traceback" not in err
    assert model.requests == []


async def test_processes_starting_together_migrate_once(postgres_server: str) -> None:
    url = await postgres.fresh_database(postgres_server)
    try:
        stores = await asyncio.gather(*(PostgresStorage.open(url) for _ in range(4)))
        for store in stores:
            await store.close()
        conn = await asyncpg.connect(url)
        try:
            applied = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        finally:
            await conn.close()
        shipped = migration_files("agentcore.storage.postgres")
        assert [r["version"] for r in applied] == [m.version for m in shipped]  # each once
    finally:
        await postgres.drop_database(postgres_server, url)


async def terminate_connections(url: str, *, waiting_on_a_lock: bool = False) -> int:
    """Drop the other connections to the database (as a failover or a restart would), and
    return once they are gone; with ``waiting_on_a_lock``, only those in the middle of a
    statement, once there is one."""
    others = "datname = current_database() AND pid <> pg_backend_pid()"
    waiting = " AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""
    conn = await asyncpg.connect(url)
    try:
        pids: list[int] = []
        while not pids:
            pids = [
                r["pid"]
                for r in await conn.fetch(
                    "SELECT pid, pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
                    f"WHERE {others}{waiting}"
                )
                if r["ended"]
            ]
            if not waiting_on_a_lock:
                break
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
        while await conn.fetchval(gone, pids):
            pass  # they end at once; their sockets are closed by the time this returns 0
    finally:
        await conn.close()
    return len(pids)


async def talk(store: PostgresStorage, clock: ManualClock, llm: FunctionLLM) -> list[str]:
    """Two messages from one person; what they were answered."""
    runtime = build_runtime(make_settings(), store, llm, clock)
    try:
        first = await runtime.handle(message(clock, "my cat is called Miso", "telegram:7"))
        second = await runtime.handle(message(clock, "are you there?", "telegram:7"))
    finally:
        await runtime.shutdown()
    return [first.text, second.text]


async def said_by_the_person(url: str, role: Role = Role.USER) -> list[str | None]:
    """What the person (or, with ``role``, their agent) said, as stored."""
    store = await PostgresStorage.open(url)
    try:
        agent = await store.load_agent(AgentKey("telegram", "7"))
        assert agent is not None
        return [m.content for m in await store.all_messages(agent.id) if m.role is role]
    finally:
        await store.close()


async def test_connections_dropped_between_statements_are_replaced(
    postgres_url: str, clock: ManualClock
) -> None:
    """While the model thinks, every connection goes (a restart, a failover): the turn's, with
    its person's lock, and the idle ones. The turn is cut short and taken up again under a new
    lock, and the next message is stored and answered on new connections."""
    dropped: list[int] = []
    dropping: list[asyncio.Task[int]] = []

    async def drop_then_answer(request: LLMRequest) -> LLMResponse:
        if not dropping:
            dropping.append(asyncio.create_task(terminate_connections(postgres_url)))
            dropping[0].add_done_callback(lambda done: dropped.append(done.result()))
            await asyncio.shield(dropping[0])  # this turn is cancelled as its lock goes
        return reply("noted")

    store = await PostgresStorage.open(postgres_url, pool_size=1)
    assert await talk(store, clock, FunctionLLM(drop_then_answer)) == ["noted", "noted"]
    assert dropped[0] >= 2  # the turn's connection and the idle one
    assert await said_by_the_person(postgres_url) == ["my cat is called Miso", "are you there?"]


@pytest.mark.parametrize(
    ("cuts", "answers"),
    [(1, ["noted", "noted"]), (2, [STORAGE_FAILED, "noted\n\nnoted"])],
)
async def test_a_connection_dropped_mid_turn_loses_nothing(
    postgres_url: str, clock: ManualClock, cuts: int, answers: list[str]
) -> None:
    """The turn's write of the answer is cut off, and the person's lock with its connection:
    the turn is taken up again under a new lock and answered once. Cut off again, the person is
    told; their message stays, and is answered together with their next one."""
    dropped: list[int] = []
    cut: list[asyncio.Future[None]] = []

    async def cut_the_next_write(request: LLMRequest) -> LLMResponse:
        if len(cut) >= cuts:
            return reply("noted")
        if cut:
            await cut[-1]  # the last blocker is gone
        blocker = await asyncpg.connect(postgres_url)
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT id FROM agents FOR UPDATE")  # the answer's write waits

        async def cut_then_unblock() -> None:
            dropped.append(await terminate_connections(postgres_url, waiting_on_a_lock=True))
            await blocker.close()

        cut.append(asyncio.ensure_future(cut_then_unblock()))
        return reply("this answer is never stored")

    store = await PostgresStorage.open(postgres_url, pool_size=2)
    assert await talk(store, clock, FunctionLLM(cut_the_next_write)) == answers
    assert dropped == [1] * cuts
    assert await said_by_the_person(postgres_url) == ["my cat is called Miso", "are you there?"]
    answers_stored = await said_by_the_person(postgres_url, Role.ASSISTANT)
    assert "this answer is never stored" not in answers_stored


async def vocabulary(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT term FROM messages_vocab UNION ALL SELECT term FROM passages_vocab"
        )
    finally:
        await conn.close()
    return {r["term"] for r in found}


async def test_forgetting_a_person_takes_their_words_out_of_the_vocabulary(
    postgres_url: str, clock: ManualClock
) -> None:
    """The spelling-correction vocabulary is everyone's words: an erasure removes the words
    only the erased person wrote (in messages and in archival notes), and keeps shared ones."""
    store = await PostgresStorage.open(postgres_url)
    try:
        alice = await store.create_agent(AgentKey("telegram", "alice"), "Alice", clock.now(), [])
        bob = await store.create_agent(AgentKey("telegram", "bob"), "Bob", clock.now(), [])
        assert alice is not None and bob is not None
        said = [NewMessage(Role.USER, "my quokka named Zorblat likes tea", clock.now())]
        await store.append_messages(alice.id, said)
        await store.add_passage(alice.id, "Zorblat the quokka", ["marsupial"], clock.now())
        await store.append_messages(bob.id, [NewMessage(Role.USER, "I like tea", clock.now())])
        assert {"quokka", "zorblat", "marsupi", "tea"} <= await vocabulary(postgres_url)
        await store.delete_agent(alice.id)
    finally:
        await store.close()
    left = await vocabulary(postgres_url)
    assert {"tea", "like"} <= left  # Bob's words stay
    assert not {"quokka", "zorblat", "marsupi"} & left


async def test_only_a_turns_connection_is_reset_when_its_pool_takes_it_back(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read or a search gives its connection back as it is (asyncpg rolls back a transaction
    left open; there is nothing else to reset, and the reset is a round trip); a turn's
    connection is reset, which releases the person's lock for whoever comes next."""
    sent: list[str] = []
    execute = asyncpg.connection.Connection.execute

    async def recorded(self: asyncpg.Connection[Any], query: str, *args: Any, **kw: Any) -> str:
        sent.append(query)
        return await execute(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", recorded)
    store = await PostgresStorage.open(postgres_url, pool_size=1)
    try:
        key = AgentKey("telegram", "ann")
        agent = await store.create_agent(key, "Ann", T0, [])
        assert agent is not None
        await store.append_messages(agent.id, [NewMessage(Role.USER, "my cat Miso", T0)])
        assert await store.search_messages(agent.id, "cat")
        assert await store.load_turn(key) is not None
        assert not [q for q in sent if "RESET ALL" in q]  # reads, writes, a search
        async with store.person(key):
            pass
        assert len([q for q in sent if "RESET ALL" in q]) == 1
        async with store.person(key, wait=False):  # the lock went with the reset
            pass
    finally:
        await store.close()
