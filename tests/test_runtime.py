"""AgentRuntime: bounded per-user slots, command routing, shutdown."""

from __future__ import annotations

import asyncio

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.runtime import EMPTY_MESSAGE, SHUTTING_DOWN, AgentSlots
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ReplyKind
from bots.compose import build_runtime
from tests.conftest import make_settings, message


async def test_slots_are_bounded_and_evict_only_idle() -> None:
    slots = AgentSlots(capacity=3)
    busy = asyncio.Event()
    release = asyncio.Event()

    async def hold_long(key: AgentKey) -> None:
        async with slots.hold(key):
            busy.set()
            await release.wait()

    holder = asyncio.create_task(hold_long(AgentKey("t", "busy")))
    await busy.wait()
    for i in range(10):
        async with slots.hold(AgentKey("t", str(i))):
            pass
    assert len(slots) == 3
    release.set()
    await holder


async def test_many_users_do_not_grow_the_cache(storage: SQLiteStorage, clock: ManualClock) -> None:
    settings = make_settings(runtime={"max_cached_agents": 16})
    runtime = build_runtime(settings, storage, FunctionLLM(lambda r: reply("ok")), clock)
    await asyncio.gather(
        *(runtime.handle(message(clock, "hi", f"telegram:{i}")) for i in range(200))
    )
    assert runtime.cached_agents <= 16


async def test_commands_do_not_reach_the_model(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(lambda r: reply("model"))
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert "I don't remember anything" in (await runtime.handle(message(clock, "/memory"))).text
    await runtime.handle(message(clock, "hello"))
    memory = await runtime.handle(message(clock, "/memory"))
    assert memory.private and "**persona**" in memory.text and "/5000 chars" in memory.text
    assert "/memory" in (await runtime.handle(message(clock, "/help"))).text
    unknown = await runtime.handle(message(clock, "/frobnicate now"))
    assert "/help" in unknown.text and unknown.kind is ReplyKind.COMMAND
    assert len(llm.requests) == 1


async def test_empty_message_gets_a_notice(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(lambda r: reply("model"))
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert (await runtime.handle(message(clock, "  \n "))).text == EMPTY_MESSAGE
    assert llm.requests == []


async def test_shutdown_lets_in_flight_turns_finish(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    started = asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        started.set()
        await asyncio.sleep(0.05)
        return reply("finished")

    llm = FunctionLLM(slow)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    turn = asyncio.create_task(runtime.handle(message(clock, "hi")))
    await started.wait()
    closing = asyncio.create_task(runtime.shutdown())
    await asyncio.sleep(0)
    assert (await runtime.handle(message(clock, "late", "telegram:9"))).text == SHUTTING_DOWN
    assert (await turn).text == "finished"
    await closing
    assert llm.closed


async def test_shutdown_is_bounded(storage: SQLiteStorage, clock: ManualClock) -> None:
    async def stuck(request: LLMRequest) -> LLMResponse:
        await asyncio.sleep(3600)
        raise AssertionError

    settings = make_settings(runtime={"shutdown_grace": 0.05})
    runtime = build_runtime(settings, storage, FunctionLLM(stuck), clock)
    turn = asyncio.create_task(runtime.handle(message(clock, "hi")))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(runtime.shutdown(), 2)
    turn.cancel()


async def test_accept_stores_before_the_turn_runs(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    from agentcore.llm.fake import ScriptedLLM  # noqa: PLC0415

    llm = ScriptedLLM([reply("hi")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    ticket = await runtime.accept(message(clock, "hello"))
    assert [p.message.text for p in await storage.list_pending()] == ["hello"]
    assert llm.requests == []
    assert (await runtime.answer(ticket)).text == "hi"
    assert await storage.list_pending() == []
    command = await runtime.accept(message(clock, "/help"))
    assert command.pending_id is None and await storage.list_pending() == []
