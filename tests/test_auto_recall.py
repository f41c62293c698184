"""Automatic recall: the runtime finds older messages and notes about what was just said, with no
tool call, and shows them after the person's message within a token budget."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, ScriptedLLM, last_user_text, reply
from agentcore.memory.prompt import streamed_without_prompt_tags
from agentcore.memory.recall import RECALL_HEADING, select, snippet, tokens
from agentcore.messages import PromptMessage, Role
from agentcore.records import Passage, SearchHit
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests.conftest import make_settings, message

UTC = ZoneInfo("UTC")


def recalled_messages(request: LLMRequest) -> list[PromptMessage]:
    return [
        m for m in request.messages if m.role is Role.SYSTEM and RECALL_HEADING in (m.content or "")
    ]


def from_memory(request: LLMRequest) -> LLMResponse:
    """A model that never calls a tool: it answers from whatever is in its prompt."""
    asked = last_user_text(request)
    if "sister" not in asked.lower():
        return reply("Okay.")
    prompt = "\n".join(m.content or "" for m in request.messages if m.content != asked)
    where = re.search(r"sister Ana lives in (\w+)", prompt)
    return reply(f"Your sister Ana lives in {where[1]}." if where else "I don't know.")


async def test_a_fact_comes_back_after_reset_and_weeks_without_tools(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(from_memory)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    told_at = clock.now()
    await runtime.handle(message(clock, "My sister Ana lives in Lisbon."))
    await runtime.handle(message(clock, "/reset"))
    clock.advance(timedelta(weeks=3))
    answer = await runtime.handle(message(clock, "Where does my sister live?"))
    assert answer.text == "Your sister Ana lives in Lisbon."
    request = llm.requests[-1]
    [shown] = recalled_messages(request)
    assert f"[{told_at:%Y-%m-%d %H:%M}] brad: My sister Ana lives in Lisbon." in (
        shown.content or ""
    )
    # It sits right after the person's message, not in the first system message.
    assert request.messages[-1] is shown and request.messages[-2].role is Role.USER
    assert RECALL_HEADING not in (request.messages[0].content or "")


async def test_messages_in_view_are_not_repeated(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(from_memory)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "My sister Ana lives in Lisbon."))
    await runtime.handle(message(clock, "Where does my sister live?"))
    assert recalled_messages(llm.requests[-1]) == []  # everything is in the window already
    await runtime.handle(message(clock, "/reset"))
    await runtime.handle(message(clock, "Is my sister still in Lisbon?"))
    [shown] = recalled_messages(llm.requests[-1])
    text = shown.content or ""
    assert "My sister Ana lives in Lisbon." in text
    assert "Your sister Ana lives in Lisbon." in text  # the bot's own answer, also out of view
    assert "Is my sister still in Lisbon?" not in text  # the message being answered


async def test_archival_notes_are_recalled(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(from_memory)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "hello"))
    agent = await storage.load_agent(AgentKey("console", "brad"))
    assert agent is not None
    await storage.add_passage(agent.id, "Brad's sister Ana lives in Porto now", [], clock.now())
    answer = await runtime.handle(message(clock, "Where does my sister live?"))
    [shown] = recalled_messages(llm.requests[-1])
    assert "archival note: Brad's sister Ana lives in Porto now" in (shown.content or "")
    assert answer.text == "Your sister Ana lives in Porto."


async def test_budget_zero_turns_it_off(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(from_memory)
    runtime = build_runtime(make_settings(memory={"recall_tokens": 0}), storage, llm, clock)
    await runtime.handle(message(clock, "My sister Ana lives in Lisbon."))
    await runtime.handle(message(clock, "/reset"))
    answer = await runtime.handle(message(clock, "Where does my sister live?"))
    assert recalled_messages(llm.requests[-1]) == [] and answer.text == "I don't know."


async def test_another_persons_history_is_never_recalled(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(from_memory)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "My sister Ana lives in Lisbon.", "console:alice"))
    answer = await runtime.handle(message(clock, "Where does my sister live?", "console:brad"))
    assert answer.text == "I don't know." and recalled_messages(llm.requests[-1]) == []


def hit(i: int, text: str, clock: ManualClock, role: Role = Role.USER) -> SearchHit:
    return SearchHit(i, role, text, clock.now() + timedelta(minutes=i))


def test_select_keeps_within_budget_and_shows_oldest_first(clock: ManualClock) -> None:
    hits = [hit(3, "third " * 10, clock), hit(1, "first", clock), hit(2, "x" * 2000, clock)]
    budget = tokens(RECALL_HEADING) + 60
    chosen = select(hits, [], budget, UTC, "Brad")
    assert chosen.message_ids == (1, 3)  # the long one does not fit; the short one still does
    assert chosen.tokens <= budget
    assert chosen.text.index("first") < chosen.text.index("third")
    assert select(hits, [], tokens(RECALL_HEADING), UTC, "Brad").text == ""


def test_select_takes_notes_and_messages_in_turns(clock: ManualClock) -> None:
    hits = [hit(i, f"message {i}", clock, Role.ASSISTANT) for i in range(1, 4)]
    notes = [Passage(i, f"note {i}", (), clock.now()) for i in range(1, 4)]
    budget = tokens(RECALL_HEADING) + 4 + 3 * tokens("- [2024-01-01 00:00] you: message 1")
    chosen = select(hits, notes, budget, UTC, "Brad")
    assert chosen.passage_ids == (1, 2) and chosen.message_ids == (1,)
    assert "you: message 1" in chosen.text


def test_snippets_are_one_line_and_capped() -> None:
    assert snippet("a\n\nb   c") == "a b c"
    long = snippet("word " * 200)
    assert len(long) == 300 and long.endswith("…")


async def test_a_model_that_copies_the_prompts_markup_does_not_show_it(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    """Seen with SmolLM2-135M: it echoes the recall block's tags around made-up lines."""
    copied = "<recalled_memory>\n- [2025-03-14 20:20] Brad: I live in Lisbon.\n</recalled_memory>"
    llm = ScriptedLLM([reply(copied)])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    answer = await runtime.handle(message(clock, "Which city do I live in?"))
    assert answer.text == "- [2025-03-14 20:20] Brad: I live in Lisbon."


def test_a_streamed_answer_never_shows_the_prompts_tags_and_only_grows() -> None:
    answer = (
        "Sure.\n<recalled_memory>\n- [2025-03-14 20:20] Brad: I live in Lisbon.\n</recalled_memory>"
    )
    shown = [streamed_without_prompt_tags(answer[:n]) for n in range(len(answer) + 1)]
    for before, after in itertools.pairwise(shown):
        assert after.startswith(before), (before, after)
    assert all("<" not in text for text in shown)
    assert shown[-1] == "Sure.\n\n- [2025-03-14 20:20] Brad: I live in Lisbon."
