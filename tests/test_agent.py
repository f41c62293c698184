"""The step loop with a scripted in-process model, on real SQLite storage."""

from __future__ import annotations

import asyncio
import random
import re

from agentcore.agent import EMPTY_REPLY, STEP_LIMIT_REPLY
from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse, LLMUnavailable
from agentcore.llm.fake import (
    FunctionLLM,
    ScriptedLLM,
    call,
    calls,
    last_user_text,
    reply,
    system_text,
)
from agentcore.memory.prompt import PRESSURE_NOTE
from agentcore.messages import PromptMessage, Role
from agentcore.runtime import LLM_FAILED
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, ReplyKind
from bots.compose import build_runtime
from tests.conftest import make_settings, message

BRAD = AgentKey("console", "brad")


async def stored(storage: SQLiteStorage, key: AgentKey = BRAD) -> list[tuple[str, str | None]]:
    agent = await storage.load_agent(key)
    assert agent is not None
    return [(m.role.value, m.content) for m in await storage.all_messages(agent.id)]


async def test_plain_content_reply(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = ScriptedLLM([reply("Hello Brad!")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    answer = await runtime.handle(message(clock, "hi"))
    assert answer.text == "Hello Brad!" and answer.kind is ReplyKind.AGENT
    assert await stored(storage) == [("user", "hi"), ("assistant", "Hello Brad!")]


async def test_send_message_reply_is_stored_as_content(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = ScriptedLLM([call("send_message", message="Hi there")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert (await runtime.handle(message(clock, "hi"))).text == "Hi there"
    assert await stored(storage) == [("user", "hi"), ("assistant", "Hi there")]


async def test_tool_then_reply_in_one_step(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = ScriptedLLM(
        [
            calls(
                ("core_memory_append", {"label": "human", "content": "Name: Brad"}),
                ("send_message", {"message": "Nice to meet you, Brad"}),
            )
        ]
    )
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert (await runtime.handle(message(clock, "I'm Brad"))).text == "Nice to meet you, Brad"
    rows = await stored(storage)
    assert rows[1] == ("assistant", "Nice to meet you, Brad")
    assert rows[2][0] == "tool" and rows[2][1] is not None and rows[2][1].startswith("Saved.")
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    blocks = {b.label: b.value for b in await storage.list_blocks(agent.id)}
    assert "Name: Brad" in blocks["human"]


async def test_tool_results_go_back_to_the_model(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = ScriptedLLM(
        [
            call("core_memory_append", "{broken json"),
            call("no_such_tool", {}),
            call("send_message", {"message": ""}),
            reply("done"),
        ]
    )
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert (await runtime.handle(message(clock, "hi"))).text == "done"
    tool_results = [m.content for m in llm.requests[-1].messages if m.role is Role.TOOL]
    assert len(tool_results) == 3
    assert "not valid JSON" in (tool_results[0] or "")
    assert "no tool named" in (tool_results[1] or "")
    assert "message is empty" in (tool_results[2] or "")


async def test_step_limit_bounds_model_calls(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(lambda request: call("archival_memory_search", query="anything"))
    runtime = build_runtime(make_settings(), storage, llm, clock)
    answer = await runtime.handle(message(clock, "loop forever"))
    assert answer.text == STEP_LIMIT_REPLY
    assert len(llm.requests) == 8
    assert [r.allow_tools for r in llm.requests] == [True] * 7 + [False]
    assert (await stored(storage))[-1] == ("assistant", STEP_LIMIT_REPLY)


async def test_empty_model_answer_gets_a_fallback(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = build_runtime(make_settings(), storage, ScriptedLLM([reply("   ")]), clock)
    assert (await runtime.handle(message(clock, "hi"))).text == EMPTY_REPLY


async def test_model_failure_keeps_the_message(storage: SQLiteStorage, clock: ManualClock) -> None:
    failing = True

    def responder(request: LLMRequest) -> LLMResponse:
        if failing:
            raise LLMUnavailable("connection refused")
        return reply("back again")

    runtime = build_runtime(make_settings(), storage, FunctionLLM(responder), clock)
    answer = await runtime.handle(message(clock, "remember the milk"))
    assert answer.text == LLM_FAILED and answer.kind is ReplyKind.ERROR
    assert await stored(storage) == [("user", "remember the milk")]
    failing = False
    assert (await runtime.handle(message(clock, "hello?"))).text == "back again"
    assert await stored(storage) == [
        ("user", "remember the milk"),
        ("user", "hello?"),
        ("assistant", "back again"),
    ]


async def test_two_users_are_isolated(storage: SQLiteStorage, clock: ManualClock) -> None:
    def responder(request: LLMRequest) -> LLMResponse:
        last = request.messages[-1]
        if last.role is Role.TOOL:
            return reply(last.content or "")
        text = last_user_text(request)
        if text.startswith("remember"):
            return call("core_memory_append", label="human", content=text)
        return call("conversation_search", query="password")

    llm = FunctionLLM(responder)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "remember my password is hunter2", "telegram:1"))
    answer = await runtime.handle(message(clock, "what is the password?", "telegram:2"))
    assert "hunter2" not in answer.text
    assert "hunter2" not in system_text(llm.requests[-1])
    alice = await storage.load_agent(AgentKey("telegram", "1"))
    bob = await storage.load_agent(AgentKey("telegram", "2"))
    assert alice is not None and bob is not None and alice.id != bob.id


async def test_same_user_messages_run_in_order(storage: SQLiteStorage, clock: ManualClock) -> None:
    rng = random.Random(7)

    async def responder(request: LLMRequest) -> LLMResponse:
        await asyncio.sleep(rng.random() / 200)
        return reply("re: " + last_user_text(request))

    runtime = build_runtime(make_settings(), storage, FunctionLLM(responder), clock)
    texts = [f"message {i}" for i in range(12)]
    answers = await asyncio.gather(*(runtime.handle(message(clock, t)) for t in texts))
    assert [a.text for a in answers] == [f"re: {t}" for t in texts]
    expected = []
    for t in texts:
        expected += [("user", t), ("assistant", f"re: {t}")]
    assert await stored(storage) == expected


async def test_group_chat_note(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = ScriptedLLM([reply("hi all")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "hi", "telegram:5", chat=ChatKind.GROUP))
    assert "group chat that other people can read" in system_text(llm.requests[0])


def _summarising_responder(summaries: list[str]) -> FunctionLLM:
    def responder(request: LLMRequest) -> LLMResponse:
        if "running summary" in system_text(request):
            summaries.append(request.messages[1].content or "")
            return reply(f"Summary #{len(summaries)}: they talked about numbers.")
        # Sometimes use a tool, so there are call/result pairs for the cut to protect.
        if len(request.messages) % 3 == 0 and request.messages[-1].role is not Role.TOOL:
            return call("archival_memory_search", query="numbers")
        return reply("ok " + "word " * 30)

    return FunctionLLM(responder)


async def test_summarisation_folds_old_messages_and_keeps_them_searchable(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    summaries: list[str] = []
    llm = _summarising_responder(summaries)
    settings = make_settings(memory={"context_window": 2500})
    runtime = build_runtime(settings, storage, llm, clock)
    for i in range(40):
        await runtime.handle(message(clock, f"number {i} is {'long text ' * 20}"))
    assert summaries, "the window should have overflowed"
    agent = await storage.load_agent(BRAD)
    assert agent is not None and agent.summary.startswith("Summary #")
    assert len(summaries) >= 2 and "Summary #1" in summaries[1]  # recursive: absorbs the old one
    window = await storage.context_messages(agent.id, agent.context_start_id)
    assert window[0].role is Role.USER  # cut only before a user turn
    assert len(await storage.all_messages(agent.id)) > len(window)
    assert await storage.search_messages(agent.id, "number 0")  # folded rows still searchable
    for request in llm.requests:  # no tool result ever arrives without its call
        open_calls: set[str] = set()
        for m in request.messages:
            open_calls |= {c.id for c in m.tool_calls}
            if m.role is Role.TOOL:
                assert m.tool_call_id in open_calls


async def test_memory_pressure_note_is_given_once(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(lambda request: reply("ok"))
    runtime = build_runtime(make_settings(memory={"context_window": 6000}), storage, llm, clock)
    for i in range(60):
        await runtime.handle(message(clock, f"chunk {i} " + "filler " * 80))
    marker = PRESSURE_NOTE.split("{")[0]
    # The turns between two folds of the history into the summary: one fill-up of the window.
    fill_ups: list[list[bool]] = [[]]
    for request in llm.requests:
        if "running summary" in system_text(request):
            fill_ups.append([])
        else:
            fill_ups[-1].append(any(marker in (m.content or "") for m in request.messages))
    assert len(fill_ups) >= 3  # the window filled up and was folded at least twice
    assert [sum(turns) for turns in fill_ups[:-1]] == [1] * (len(fill_ups) - 1)
    assert sum(fill_ups[-1]) <= 1
    for turns in fill_ups[:-1]:  # given when the window filled, never on the turn after
        noted = turns.index(True)
        assert not any(turns[noted + 1 :]) and 0 < noted < len(turns)


async def _turns_until_first_fold(
    storage: SQLiteStorage, clock: ManualClock, user: str, report_usage: bool
) -> int:
    folds: list[int] = []
    turn = 0

    def responder(request: LLMRequest) -> LLMResponse:
        if "running summary" in system_text(request):
            folds.append(turn)
            return reply("summary")
        chars = sum(len(m.content or "") for m in request.messages)
        # This provider's tokenizer counts twice what a chars/4 estimate expects.
        return reply("ok", prompt_tokens=chars // 2 if report_usage else None)

    settings = make_settings(memory={"context_window": 6000})
    runtime = build_runtime(settings, storage, FunctionLLM(responder), clock)
    while not folds and turn < 100:
        turn += 1
        await runtime.handle(message(clock, f"turn {turn} " + "words " * 50, user))
    return folds[0] if folds else 100


async def test_provider_usage_corrects_the_estimate(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    """A provider counting more tokens than we estimate makes folding happen sooner."""
    corrected = await _turns_until_first_fold(storage, clock, "telegram:1", report_usage=True)
    uncorrected = await _turns_until_first_fold(storage, clock, "telegram:2", report_usage=False)
    assert corrected < uncorrected < 100


def _week_one(request: LLMRequest) -> LLMResponse:
    last = request.messages[-1]
    if last.role is Role.TOOL:
        return reply("Nice to meet you, Brad! Bouldering is great.")
    return call("core_memory_append", label="human", content="Name: Brad")


def _week_three(request: LLMRequest) -> LLMResponse:
    last = request.messages[-1]
    if last.role is Role.TOOL:
        hobby = re.search(r"love (\w+)", last.content or "")
        name = re.search(r"Name: (\w+)", system_text(request))
        assert name and hobby, (system_text(request), last.content)
        return reply(f"You're {name.group(1)}, and you told me you love {hobby.group(1)}.")
    return call(
        "conversation_search", query="hobby love", start_date="2025-01-06", end_date="2025-01-12"
    )


async def test_multi_week_memory_across_a_restart(db_path: object, clock: ManualClock) -> None:
    from datetime import timedelta  # noqa: PLC0415

    first_store = await SQLiteStorage.open(db_path)  # type: ignore[arg-type]
    first = build_runtime(make_settings(), first_store, FunctionLLM(_week_one), clock)
    await first.handle(message(clock, "My name is Brad and I love bouldering"))
    await first.shutdown()

    clock.advance(timedelta(weeks=2, days=1))
    second_store = await SQLiteStorage.open(db_path)  # type: ignore[arg-type]
    llm = FunctionLLM(_week_three)
    second = build_runtime(make_settings(), second_store, llm, clock)
    answer = await second.handle(message(clock, "Do you remember me and my hobby?"))
    assert answer.text == "You're Brad, and you told me you love bouldering."
    prompt = system_text(llm.requests[0])
    assert "2 weeks ago" in prompt and "Session: 2. A new session has started" in prompt
    await second.shutdown()


async def test_a_fake_model_that_does_not_record_keeps_no_requests() -> None:
    request = LLMRequest(messages=(PromptMessage(Role.USER, "hi"),))
    recording = FunctionLLM(lambda r: reply("ok"))
    silent = FunctionLLM(lambda r: reply("ok"), record=False)
    for llm in (recording, silent):
        assert (await llm.complete(request)).content == "ok"
    assert len(recording.requests) == 1
    assert silent.requests == []
