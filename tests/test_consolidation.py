"""Sleep-time consolidation through the runtime, on real SQLite storage and an injected clock:
when it runs, what it changes (as revertable block versions by "consolidation"), and what it
never does (run twice, hold up a turn, lose a block, overspend)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse, LLMUnavailable
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.memory.consolidation import INSTRUCTIONS
from agentcore.messages import Role
from agentcore.records import Actor, NewMessage
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.migrate import load_migrations
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import Completion, FakeOpenAI
from tests.process import bot_env, run_bot

BRAD = AgentKey("console", "brad")
GAP = timedelta(hours=4, minutes=1)  # just over the default session gap
PLACEHOLDER = "Nothing is known about this person yet."
FACTS = {"blocks": {"human": {"add": ["Has a beagle called Miso"]}}, "notes": ["Miso: beagle"]}


class Model:
    """Chat turns: "Okay."; consolidations: ``answer`` (JSON of FACTS unless a test changes
    it). Every consolidation request is kept."""

    def __init__(self) -> None:
        self.answer = json.dumps(FACTS)
        self.consolidations: list[LLMRequest] = []
        self.release: asyncio.Event | None = None  # set: consolidations wait for it
        self.asked = asyncio.Event()  # a consolidation request arrived

    async def __call__(self, request: LLMRequest) -> LLMResponse:
        if request.messages[0].content != INSTRUCTIONS:
            return reply("Okay.")
        self.consolidations.append(request)
        self.asked.set()
        if self.release is not None:
            await self.release.wait()
        return reply(self.answer)


def runtime_with(
    storage: SQLiteStorage, clock: ManualClock, model: Model, **consolidation: object
) -> AgentRuntime:
    settings = make_settings(consolidation={"enabled": True, **consolidation})
    return build_runtime(settings, storage, FunctionLLM(model), clock)


async def told_and_ended(runtime: AgentRuntime, clock: ManualClock) -> int:
    """The person tells a fact, the session gap passes, one sweep: how many it consolidated."""
    await runtime.handle(message(clock, "I have a dog called Miso."))
    clock.advance(GAP)
    return await runtime.consolidate_ended()


async def human_block(storage: SQLiteStorage) -> str:
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    return {b.label: b.value for b in await storage.list_blocks(agent.id)}["human"]


async def test_an_ended_session_is_consolidated_once(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model)
    await runtime.handle(message(clock, "I have a dog called Miso. He is a beagle."))
    assert await runtime.consolidate_ended() == 0  # the session has not ended yet
    clock.advance(GAP)
    assert await runtime.consolidate_ended() == 1
    assert await human_block(storage) == "Has a beagle called Miso"  # the placeholder went
    assert await runtime.consolidate_ended() == 0  # never twice
    assert len(model.consolidations) == 1
    body = model.consolidations[0].messages[-1].content or ""
    assert "I have a dog called Miso" in body and "Okay." in body and "<human>" in body
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    [version] = await storage.block_history(agent.id, "human")
    assert version.actor is Actor.CONSOLIDATION and version.actor_name == "gpt-4o-mini"
    assert [p.content for p in await storage.all_passages(agent.id)] == ["Miso: beagle"]
    # The next session's messages are the next consolidation's, and only they.
    await runtime.handle(message(clock, "Miso turned three today!"))
    clock.advance(GAP)
    assert await runtime.consolidate_ended() == 1
    second = model.consolidations[1].messages[-1].content or ""
    assert "Miso turned three" in second and "called Miso. He is a beagle" not in second


async def test_the_change_is_revertable_by_an_operator(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_with(storage, clock, Model())
    await told_and_ended(runtime, clock)
    history = await runtime.handle(message(clock, "/admin history console:brad human"))
    assert "consolidation" in history.text
    await runtime.handle(message(clock, "/admin revert console:brad human 1"))
    assert await human_block(storage) == PLACEHOLDER


@pytest.mark.parametrize(
    "answer",
    ["Sure! Miso is a dog.", '{"blocks": {"human": {"add": "Miso"}}}', "", "<think>hm</think>"],
)
async def test_an_unusable_answer_changes_nothing_and_is_logged(
    storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    model = Model()
    model.answer = answer
    runtime = runtime_with(storage, clock, model)
    with caplog.at_level(logging.WARNING):
        assert await told_and_ended(runtime, clock) == 1  # read once; not tried again
    assert await human_block(storage) == PLACEHOLDER
    assert any("answer was not usable" in r.message for r in caplog.records)
    assert "Miso" not in caplog.text  # the log says why, not what the person said
    assert await runtime.consolidate_ended() == 0


@pytest.mark.parametrize(
    ("answer", "human"),
    [
        # A model that cannot keep to JSON writes one change per line.
        ("ADD human: Has a beagle called Miso\nNOTE: Miso is a beagle", "Has a beagle called Miso"),
        # An edit that would take the block over its limit is refused.
        (json.dumps({"blocks": {"human": {"add": ["x" * 6000]}}}), PLACEHOLDER),
    ],
)
async def test_what_an_answer_does_to_the_block(
    storage: SQLiteStorage, clock: ManualClock, answer: str, human: str
) -> None:
    model = Model()
    model.answer = answer
    assert await told_and_ended(runtime_with(storage, clock, model), clock) == 1
    assert await human_block(storage) == human


async def test_a_failing_model_is_tried_again_later(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    model = Model()
    failing = True

    async def flaky(request: LLMRequest) -> LLMResponse:
        if failing and request.messages[0].content == INSTRUCTIONS:
            raise LLMUnavailable("connection refused")
        return await model(request)

    runtime = build_runtime(
        make_settings(consolidation={"enabled": True}), storage, FunctionLLM(flaky), clock
    )
    assert await told_and_ended(runtime, clock) == 0
    failing = False
    assert await runtime.consolidate_ended() == 1
    assert await human_block(storage) == "Has a beagle called Miso"


async def sweep_under_way(
    runtime: AgentRuntime, clock: ManualClock, model: Model
) -> asyncio.Future[int]:
    """A consolidation whose model call is under way, waiting for ``model.release``."""
    model.release = asyncio.Event()
    await runtime.handle(message(clock, "I have a dog called Miso."))
    clock.advance(GAP)
    sweep = asyncio.ensure_future(runtime.consolidate_ended())
    await asyncio.wait_for(model.asked.wait(), 5)
    return sweep


async def test_it_never_holds_up_a_turn(storage: SQLiteStorage, clock: ManualClock) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model)
    sweep = await sweep_under_way(runtime, clock, model)
    answer = await asyncio.wait_for(runtime.handle(message(clock, "Hello again!")), 5)
    assert answer.text == "Okay." and not sweep.done()
    assert model.release is not None
    model.release.set()
    assert await sweep == 1
    assert await human_block(storage) == "Has a beagle called Miso"


async def test_edits_apply_to_the_blocks_as_they_are_then(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    """A turn that edits the block while the consolidation's model call runs is kept."""
    model = Model()
    runtime = runtime_with(storage, clock, model)
    sweep = await sweep_under_way(runtime, clock, model)
    await runtime.handle(message(clock, "/admin set console:brad human Name: Brad"))
    assert model.release is not None
    model.release.set()
    await sweep
    assert await human_block(storage) == "Name: Brad\nHas a beagle called Miso"


async def test_the_daily_budget_holds_sessions_until_tomorrow(
    storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model, daily_tokens=100)  # less than one request
    with caplog.at_level(logging.WARNING):
        assert await told_and_ended(runtime, clock) == 0
        assert await runtime.consolidate_ended() == 0
    assert model.consolidations == []
    assert sum("budget" in r.message for r in caplog.records) == 1  # told once a day


async def test_open_sessions_are_consolidated_at_shutdown(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model)
    await runtime.handle(message(clock, "I have a dog called Miso."))
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    await runtime.shutdown()
    reopened = await SQLiteStorage.open(db_path)
    try:
        blocks = {b.label: b.value for b in await reopened.list_blocks(agent.id)}
    finally:
        await reopened.close()
    assert blocks["human"] == "Has a beagle called Miso"


async def test_sessions_that_ended_while_the_bot_was_down_are_found(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    model = Model()
    first = runtime_with(storage, clock, model, shutdown_seconds=0)
    await first.handle(message(clock, "I have a dog called Miso."))
    await first.shutdown()  # no time to consolidate at shutdown
    assert model.consolidations == []
    clock.advance(timedelta(days=2))
    reopened = await SQLiteStorage.open(db_path)
    second = runtime_with(reopened, clock, model)
    try:
        assert await second.consolidate_ended() == 1
    finally:
        await second.shutdown()
    assert len(model.consolidations) == 1


async def consolidated(
    model: Model, count: int, storage: SQLiteStorage, clock: ManualClock
) -> None:
    """Until ``count`` consolidations were asked for and nothing ended is left unread (the
    background sweep runs on its own task and the database's thread: no event to await)."""

    async def done() -> bool:
        return len(model.consolidations) >= count and not await storage.unconsolidated(
            clock.now(), 9
        )

    async with asyncio.timeout(5):
        while not await done():  # noqa: ASYNC110  (no event: another task and thread)
            await asyncio.sleep(0.002)


@asynccontextmanager
async def sweeping(runtime: AgentRuntime) -> AsyncIterator[None]:
    """The runtime's background work running, as ``python -m bots`` runs it, then stopped."""
    task = asyncio.create_task(runtime.background())
    try:
        yield
    finally:
        task.cancel()
        await runtime.shutdown()


async def test_the_background_sweep_runs_at_start_without_waiting_its_interval(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model, sweep_seconds=3600.0)
    await runtime.handle(message(clock, "I have a dog called Miso."))
    clock.advance(GAP)  # ended, say while the bot was down
    async with sweeping(runtime):
        await consolidated(model, 1, storage, clock)  # only the sweep at start can, in time
    assert len(model.consolidations) == 1


async def test_the_background_sweep_finds_sessions_as_they_end(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model, sweep_seconds=0.01)
    await runtime.handle(message(clock, "I have a dog called Miso."))
    clock.advance(GAP)
    async with sweeping(runtime):
        await consolidated(model, 1, storage, clock)
        assert await human_block(storage) == "Has a beagle called Miso"
        await runtime.handle(message(clock, "Miso turned three today!"))
        clock.advance(GAP)  # only a later sweep can find this one
        await consolidated(model, 2, storage, clock)
    assert "Miso turned three" in (model.consolidations[1].messages[-1].content or "")


async def test_a_session_with_nothing_from_the_person_costs_nothing(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model)
    await told_and_ended(runtime, clock)
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    await storage.append_messages(
        agent.id, [NewMessage(Role.ASSISTANT, "A reminder!", clock.now())]
    )
    clock.advance(GAP)
    assert await runtime.consolidate_ended() == 1
    assert len(model.consolidations) == 1  # no model call for it


async def test_off_means_off(storage: SQLiteStorage, clock: ManualClock) -> None:
    model = Model()
    runtime = runtime_with(storage, clock, model, enabled=False)
    assert await told_and_ended(runtime, clock) == 0
    await runtime.shutdown()
    assert model.consolidations == []


async def test_upgrading_keeps_block_history_and_reads_no_old_history(tmp_path: Path) -> None:
    """A database at schema version 2 keeps its block versions through the rebuilt history
    table, and what it stored before is not sent to consolidation."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in load_migrations()[:2]:
        for statement in migration.statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO agents (id, platform, user_id, created_at, last_user_at) "
        "VALUES (1, 'console', 'brad', 0, 1000)"
    )
    db.execute(
        "INSERT INTO blocks (id, agent_id, label, value, char_limit, version, updated_at) "
        "VALUES (1, 1, 'human', 'Name: Brad', 100, 2, 0)"
    )
    db.execute(
        "INSERT INTO block_history (block_id, version, actor, actor_name, old_value, new_value,"
        " created_at) VALUES (1, 2, 'agent', 'agent', '', 'Name: Brad', 0)"
    )
    db.execute(
        "INSERT INTO messages (agent_id, role, content, created_at) "
        "VALUES (1, 'user', 'My name is Brad', 1000)"
    )
    db.close()
    store = await SQLiteStorage.open(path)
    try:
        [version] = await store.block_history(1, "human")
        assert (version.version, version.actor, version.new_value) == (2, Actor.AGENT, "Name: Brad")
        far = datetime(2030, 1, 1, tzinfo=UTC)
        assert await store.unconsolidated(far, 10) == []
        saved = await store.save_block(1, "human", "x", Actor.CONSOLIDATION, "m", far)
        assert saved.version == 3
    finally:
        await store.close()


async def test_the_terminal_chat_consolidates_with_its_own_model_at_exit(tmp_path: Path) -> None:
    """``python -m bots`` with ``[consolidation] model`` set: chat goes to the chat model, the
    session is consolidated by the other one when the piped input ends."""

    def endpoint(body: dict[str, Any]) -> Completion:
        if body["messages"][0]["content"] == INSTRUCTIONS:
            return Completion(content=json.dumps(FACTS))
        return Completion(content="Okay.")

    async with FakeOpenAI(endpoint, models=["gpt-4o-mini", "small-model"]) as server:
        env = bot_env(tmp_path, server.base_url, AGENTCORE_CONSOLIDATION__MODEL="small-model")
        code, out, err = await run_bot("I have a dog called Miso.\n", env, tmp_path)
    assert code == 0 and out == "Okay.\n", err
    models = [(b["messages"][0]["content"] == INSTRUCTIONS, b["model"]) for b in server.requests]
    assert models == [(False, "gpt-4o-mini"), (True, "small-model")]
    with sqlite3.connect(tmp_path / "bot.db") as db:
        history = db.execute("SELECT actor, actor_name, new_value FROM block_history").fetchall()
    assert history == [("consolidation", "small-model", "Has a beagle called Miso")]
