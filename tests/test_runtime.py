"""AgentRuntime: bounded per-user slots, command routing, shutdown."""

from __future__ import annotations

import asyncio

import pytest

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
    held = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []
    busy = AgentKey("t", "busy")

    async def hold(key: AgentKey, name: str) -> None:
        async with slots.hold(key):
            order.append(name)
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold(busy, "first"))
    await held.wait()
    for i in range(10):  # ten other people come and go: their idle slots are evicted
        async with slots.hold(AgentKey("t", str(i))):
            pass
    assert len(slots) == 3
    # The busy person's slot survived: their next turn still waits for the running one. (Had
    # the slot been evicted, it would get a fresh lock and run at once, out of order.)
    assert slots.busy(busy)
    second = asyncio.create_task(hold(busy, "second"))
    await asyncio.sleep(0)  # one pass of the loop: a free lock would be taken right here
    assert order == ["first"] and not second.done()
    release.set()
    await asyncio.gather(holder, second)
    assert order == ["first", "second"]
    assert len(slots) == 3 and not slots.busy(busy)


async def test_a_slot_is_reentrant_for_the_task_holding_it() -> None:
    slots = AgentSlots(capacity=3)
    key = AgentKey("t", "op")
    async with slots.hold(key):
        assert not slots.busy(key)  # not busy for its holder: holding it again does not wait
        async with asyncio.timeout(1), slots.hold(key):
            pass
        assert await asyncio.create_task(_busy_elsewhere(slots, key))  # busy for other tasks
    assert not slots.busy(key)


async def _busy_elsewhere(slots: AgentSlots, key: AgentKey) -> bool:
    return slots.busy(key)


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
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        started.set()
        await release.wait()
        return reply("finished")

    llm = FunctionLLM(slow)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    turn = asyncio.create_task(runtime.handle(message(clock, "hi")))
    await started.wait()
    closing = asyncio.create_task(runtime.shutdown())
    await asyncio.sleep(0)  # one pass of the loop: the shutdown starts
    assert (await runtime.handle(message(clock, "late", "telegram:9"))).text == SHUTTING_DOWN
    assert not closing.done() and not llm.closed  # waiting for the turn
    release.set()
    assert (await turn).text == "finished"
    await closing
    assert llm.closed


async def test_shutdown_is_bounded(
    storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    asked = asyncio.Event()

    async def stuck(request: LLMRequest) -> LLMResponse:
        asked.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError

    llm = FunctionLLM(stuck)
    settings = make_settings(runtime={"shutdown_grace": 0.05})
    runtime = build_runtime(settings, storage, llm, clock)
    turn = asyncio.create_task(runtime.handle(message(clock, "hi")))
    await asyncio.wait_for(asked.wait(), 5)  # the turn is in flight, waiting on the model
    await asyncio.wait_for(runtime.shutdown(), 5)  # returns although the turn never ends
    assert not turn.done() and llm.closed
    assert "shutdown: 1 turn(s) still running after 0s; closing anyway" in caplog.text
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn


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
