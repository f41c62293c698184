"""PostgreSQL as people will run it: the real ``python -m bots`` process on a database URL, the
ways a database URL can be wrong, processes starting together, and a connection that drops in
the middle of a turn. (Every storage method is covered on PostgreSQL by tests/contract/.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.messages import Role
from agentcore.records import NewMessage
from agentcore.runtime import STORAGE_FAILED
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.schema import migration_files
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests import postgres
from tests.conftest import make_settings, message
from tests.fakes.openai_server import Completion, FakeOpenAI, last_user
from tests.process import bot_env, run_bot
from tests.test_admin_cli import admin
from tests.test_reliability import running_bot


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


async def test_a_second_bot_on_the_same_database_refuses_to_start(
    tmp_path: Path, postgres_url: str
) -> None:
    """Until turns take a per-person lock, one bot process per PostgreSQL database, as with
    SQLite; the lock dies with its process, and the operator CLI may run beside the bot."""
    async with FakeOpenAI(lambda body: Completion(content="hi")) as model:
        env = bot_env(tmp_path, model.base_url, AGENTCORE_DB=postgres_url)
        async with running_bot(env, tmp_path) as first:
            await first.say("hello")
            assert await first.line() == "hi\n"
            code, out, err = await run_bot("hello\n", env, tmp_path)
            assert (code, out) == (1, ""), err
            assert "another bot process is already running on postgresql://" in err
            assert password_of(postgres_url) not in err and "Traceback" not in err
            assert (await admin(env, "users"))[0] == 0
            first.proc.kill()
            await first.proc.wait()
        code, out, err = await run_bot("hello\n", env, tmp_path)
        assert (code, out) == (0, "hi\n"), err


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
        assert [r["version"] for r in applied] == [m.version for m in shipped]
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


async def said_by_the_person(url: str) -> list[str | None]:
    store = await PostgresStorage.open(url)
    try:
        agent = await store.load_agent(AgentKey("telegram", "7"))
        assert agent is not None
        return [m.content for m in await store.all_messages(agent.id) if m.role is Role.USER]
    finally:
        await store.close()


async def test_a_connection_dropped_between_statements_is_replaced(
    postgres_url: str, clock: ManualClock
) -> None:
    dropped: list[int] = []

    async def drop_then_answer(request: LLMRequest) -> LLMResponse:
        if not dropped:  # while the model thinks, the idle connection goes
            dropped.append(await terminate_connections(postgres_url))
        return reply("noted")

    store = await PostgresStorage.open(postgres_url, pool_size=1)
    assert await talk(store, clock, FunctionLLM(drop_then_answer)) == ["noted", "noted"]
    assert dropped[0] >= 1
    assert await said_by_the_person(postgres_url) == ["my cat is called Miso", "are you there?"]


async def test_a_connection_dropped_mid_statement_gets_the_short_message_and_loses_nothing(
    postgres_url: str, clock: ManualClock
) -> None:
    """The turn's write of the answer is cut off: the person is told, their message stays, and
    the next message is answered."""
    dropped: list[int] = []

    async def cut_the_next_write(request: LLMRequest) -> LLMResponse:
        if dropped:
            return reply("noted")
        blocker = await asyncpg.connect(postgres_url)
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT id FROM agents FOR UPDATE")  # the answer's write waits
        cut = asyncio.ensure_future(terminate_connections(postgres_url, waiting_on_a_lock=True))
        cut.add_done_callback(lambda done: dropped.append(done.result()))
        cut.add_done_callback(lambda done: asyncio.ensure_future(blocker.close()))
        return reply("this answer is never stored")

    store = await PostgresStorage.open(postgres_url, pool_size=2)
    assert await talk(store, clock, FunctionLLM(cut_the_next_write)) == [STORAGE_FAILED, "noted"]
    assert dropped == [1]
    assert await said_by_the_person(postgres_url) == ["my cat is called Miso", "are you there?"]


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
