"""Floods and limits: rate limit, bounded queue, long messages, in-flight cap, recovery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agentcore.clock import ManualClock
from agentcore.commands.user import NOTHING_STORED
from agentcore.limits import RateLimiter
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.messages import Role
from agentcore.records import PendingMessage
from agentcore.runtime import BUSY, COMMAND_LATER, QUEUE_FULL, SLOW_DOWN
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests.conftest import make_settings, message

BRAD = AgentKey("console", "brad")


def user_texts(request: LLMRequest) -> list[str]:
    return [m.content or "" for m in request.messages if m.role is Role.USER]


async def stored_user_texts(storage: SQLiteStorage, key: AgentKey = BRAD) -> list[str]:
    agent = await storage.load_agent(key)
    assert agent is not None
    return [m.content or "" for m in await storage.all_messages(agent.id) if m.role is Role.USER]


def test_rate_limiter_window_and_one_notice() -> None:
    clock = ManualClock()
    limiter = RateLimiter(per_minute=3, max_people=2)
    key = AgentKey("t", "1")
    assert [limiter.allow(key, clock.now()) for _ in range(4)] == [True, True, True, False]
    assert limiter.should_notify(key, clock.now())
    assert not limiter.should_notify(key, clock.now())
    clock.advance(timedelta(seconds=61))
    assert limiter.allow(key, clock.now()) and limiter.should_notify(key, clock.now())
    for i in range(5):  # many people: only the two most recent are tracked
        limiter.allow(AgentKey("t", f"other{i}"), clock.now())
    assert len(limiter._people) == 2


async def test_flood_is_held_back_and_answered_together(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(lambda r: reply(f"answered {len(user_texts(r))}"))
    settings = make_settings(runtime={"rate_limit_per_minute": 5})
    runtime = build_runtime(settings, storage, llm, clock)
    answers = [await runtime.handle(message(clock, f"m{i}")) for i in range(9)]
    assert [a.text for a in answers[:5]] == [f"answered {i + 1}" for i in range(5)]
    assert answers[5].text == SLOW_DOWN
    assert all(a.is_empty for a in answers[6:])
    assert len(llm.requests) == 5
    clock.advance(timedelta(minutes=1))
    later = await runtime.handle(message(clock, "m9"))
    assert user_texts(llm.requests[-1])[-5:] == ["m5", "m6", "m7", "m8", "m9"]
    assert later.text.startswith("answered")
    assert await stored_user_texts(storage) == [f"m{i}" for i in range(10)]
    assert await storage.list_pending() == []


async def test_a_full_queue_declines_with_one_notice(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(lambda r: reply("ok"))
    settings = make_settings(runtime={"rate_limit_per_minute": 1, "max_pending_per_user": 2})
    runtime = build_runtime(settings, storage, llm, clock)
    answers = [(await runtime.handle(message(clock, f"m{i}"))).text for i in range(6)]
    assert answers[:2] == ["ok", SLOW_DOWN]
    assert answers[2:] == ["", QUEUE_FULL, "", ""]  # m2 held; m3.. declined, told once
    assert [p.message.text for p in await storage.list_pending()] == ["m1", "m2"]
    clock.advance(timedelta(seconds=61))
    answers = [(await runtime.handle(message(clock, f"n{i}"))).text for i in range(3)]
    assert answers == ["ok", SLOW_DOWN, ""]  # n0 answers m1 and m2 too; n1, n2 held
    assert await stored_user_texts(storage) == ["m0", "m1", "m2", "n0"]
    assert (await runtime.handle(message(clock, "n3"))).text == QUEUE_FULL  # a new window
    assert (await runtime.handle(message(clock, "n4"))).text == ""
    assert [p.message.text for p in await storage.list_pending()] == ["n1", "n2"]


async def test_over_the_limit_a_costly_command_is_refused_and_says_so(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    settings = make_settings(runtime={"rate_limit_per_minute": 2})
    runtime = build_runtime(settings, storage, FunctionLLM(lambda r: reply("ok")), clock)
    answers = [(await runtime.handle(message(clock, "/export"))).text for _ in range(4)]
    refused = COMMAND_LATER.format(name="export")
    assert answers[:2] == [NOTHING_STORED, NOTHING_STORED]  # commands count against the limit
    assert answers[2:] == [refused, refused]  # every refusal is answered, none is "kept"
    assert "/search" in (await runtime.handle(message(clock, "/search tea"))).text
    assert (await runtime.handle(message(clock, "/help"))).text.startswith("Commands:")
    memory = await runtime.handle(message(clock, "/memory"))  # answered, not refused
    assert memory.text == "I don't remember anything about you yet."
    assert await storage.list_pending() == []  # a command is not a message to keep


async def test_forget_works_for_someone_flooding(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    settings = make_settings(runtime={"rate_limit_per_minute": 3})
    runtime = build_runtime(settings, storage, FunctionLLM(lambda r: reply("ok")), clock)
    answers = [(await runtime.handle(message(clock, f"m{i}"))).text for i in range(20)]
    assert answers[3] == SLOW_DOWN and len(await storage.list_pending()) == 17
    asked = await runtime.handle(message(clock, "/forget"))
    assert "send /forget confirm within 2 minutes" in asked.text
    done = await runtime.handle(message(clock, "/forget confirm"))
    assert done.text.startswith("Done: I've erased everything")
    assert await storage.load_agent(BRAD) is None
    assert await storage.list_pending() == []  # the held-back messages are erased too
    assert await runtime.recover("console") == []


async def test_long_message_is_shortened_for_the_model_with_a_note(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(lambda r: reply("read it"))
    runtime = build_runtime(make_settings(), storage, llm, clock)
    essay = "word " * 4000  # 20,000 characters
    answer = await runtime.handle(message(clock, essay))
    assert (
        answer.text.startswith("read it") and "only read the first 8,000 characters" in answer.text
    )
    [seen] = user_texts(llm.requests[0])
    assert seen.startswith(essay[:8000]) and "12000 more characters not shown" in seen
    assert await stored_user_texts(storage) == [essay]  # stored whole
    huge = "x" * 100_000
    await runtime.handle(message(clock, huge))
    assert (await stored_user_texts(storage))[-1] == "x" * 64_000  # up to the hard limit


async def test_too_much_in_flight_holds_messages_back(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    release, both_running = asyncio.Event(), asyncio.Event()
    asked: list[LLMRequest] = []

    async def slow(request: LLMRequest) -> LLMResponse:
        asked.append(request)
        if len(asked) == 2:
            both_running.set()
        await release.wait()
        return reply("done " + ",".join(user_texts(request)))

    settings = make_settings(runtime={"max_in_flight": 2})
    runtime = build_runtime(settings, storage, FunctionLLM(slow), clock)
    running = [
        asyncio.create_task(runtime.handle(message(clock, f"hi {i}", f"telegram:{i}")))
        for i in range(2)
    ]
    await asyncio.wait_for(both_running.wait(), 5)  # two turns in flight
    third = await asyncio.wait_for(runtime.handle(message(clock, "hello", "telegram:3")), 5)
    assert third.text == BUSY
    release.set()
    await asyncio.gather(*running)
    again = await runtime.handle(message(clock, "still there?", "telegram:3"))
    assert again.text == "done hello,still there?"


async def test_recover_answers_what_a_crash_left_waiting(
    db_path: object, clock: ManualClock
) -> None:
    first = await SQLiteStorage.open(db_path)  # type: ignore[arg-type]
    crashed = build_runtime(make_settings(), first, FunctionLLM(lambda r: reply("never")), clock)
    await crashed.accept(message(clock, "are you there?", "telegram:5"))
    await crashed.accept(message(clock, "hello??", "telegram:5"))
    await crashed.accept(message(clock, "hi", "telegram:6"))
    await first.close()  # the process died before answering

    second = await SQLiteStorage.open(db_path)  # type: ignore[arg-type]
    llm = FunctionLLM(lambda r: reply("back: " + " / ".join(user_texts(r))))
    runtime = build_runtime(make_settings(), second, llm, clock)
    tickets = await runtime.recover("telegram")
    assert [t.message.text for t in tickets] == ["hello??", "hi"]
    answers = [await runtime.answer(t) for t in tickets]
    assert [a.text for a in answers] == ["back: are you there? / hello??", "back: hi"]
    assert await runtime.recover("telegram") == []
    await runtime.shutdown()


async def test_five_hundred_flooding_users_stay_bounded(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(lambda r: reply("ok"))
    settings = make_settings(
        runtime={"max_cached_agents": 64, "rate_limit_per_minute": 3, "max_in_flight": 100}
    )
    runtime = build_runtime(settings, storage, llm, clock)
    flood = [message(clock, f"spam {n}", f"telegram:{u}") for n in range(6) for u in range(500)]
    answers = await asyncio.gather(*(runtime.handle(m) for m in flood))
    assert runtime.cached_agents <= 64
    assert sum(1 for a in answers if a.text == "ok") <= 500 * 3
    agents = await storage.list_agents(1000)
    kept = sum(a.message_count for a in agents) + len(await storage.list_pending())
    user_rows = kept - sum(1 for a in answers if a.text == "ok")  # minus the assistant replies
    assert user_rows == len(flood)  # every message was stored: none lost


async def test_held_back_messages_are_answered_unprompted(
    storage: SQLiteStorage, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str | None] = []
    list_pending = storage.list_pending

    async def counted(platform: str | None = None) -> list[PendingMessage]:
        reads.append(platform)
        return await list_pending(platform)

    monkeypatch.setattr(storage, "list_pending", counted)
    llm = FunctionLLM(lambda r: reply("answered " + ",".join(user_texts(r)[-2:])))
    # No pause between sweeps, so each pass of the event loop is one sweep.
    settings = make_settings(runtime={"rate_limit_per_minute": 1, "held_answer_seconds": 0})
    runtime = build_runtime(settings, storage, llm, clock)
    idle = runtime.held_back_tickets("console")
    waiting = asyncio.ensure_future(anext(idle))
    for _ in range(20):
        await asyncio.sleep(0)  # one pass of the loop: one more sweep
    assert reads == [] and not waiting.done()  # nothing held back: the database is not read
    waiting.cancel()
    answers = [(await runtime.handle(message(clock, f"m{i}"))).text for i in range(3)]
    assert answers == ["answered m0", SLOW_DOWN, ""]
    sweeps = runtime.held_back_tickets("console")
    ticket = await asyncio.wait_for(anext(sweeps), 5)
    assert reads == ["console"]
    assert ticket.message.key == BRAD and ticket.message.text == "m2"  # one per person
    assert (await runtime.answer(ticket)).text == "answered m1,m2"
    assert await storage.list_pending() == []
    assert len(llm.requests) == 2
    await sweeps.aclose()
