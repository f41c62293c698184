"""The prompt layout for caching: a prefix that stays the same from request to request, what
changes every turn after the history, and core-memory edits that do not rewrite the prefix."""

from __future__ import annotations

import itertools
from datetime import timedelta

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, call, last_user_text, opens_turn, reply
from agentcore.memory import prefix
from agentcore.memory.recall import RECALL_HEADING
from agentcore.messages import PromptMessage, Role
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, SystemEvent
from bots.compose import build_runtime
from tests.conftest import make_settings, message

ANN = "telegram:7"
OPERATOR = "telegram:99"


def model(request: LLMRequest) -> LLMResponse:
    """Saves "remember X" to the human block, rewrites it on "rewrite X", else chats."""
    if request.messages[-1].role is Role.TOOL:
        return reply("Done.")
    text = last_user_text(request)
    if text.startswith("remember "):
        return call("core_memory_append", label="human", content=text[9:])
    if text.startswith("rewrite "):
        return call("memory_rethink", label="human", new_memory=text[8:])
    return reply(f"You said {len(text)} characters.")


def first_system(request: LLMRequest) -> str:
    return request.messages[0].content or ""


def context_of(request: LLMRequest) -> PromptMessage:
    """The turn context: the system message right after the person's latest message."""
    latest = max(i for i, m in enumerate(request.messages) if m.role is Role.USER)
    context = request.messages[latest + 1]
    assert context.role is Role.SYSTEM
    return context


def turns(llm: FunctionLLM) -> list[LLMRequest]:
    return [r for r in llm.requests if opens_turn(r)]


async def say(runtime: AgentRuntime, clock: ManualClock, text: str, gap: float = 1) -> None:
    clock.advance(timedelta(minutes=gap))
    await runtime.handle(message(clock, text, ANN))


def repeats(earlier: LLMRequest, later: LLMRequest) -> int:
    """How many leading messages of ``later`` are exactly ``earlier``'s."""
    count = 0
    for a, b in zip(earlier.messages, later.messages, strict=False):
        if a != b:
            break
        count += 1
    return count


async def test_each_turn_repeats_the_previous_one_up_to_its_context(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    for text in ("hello", "how are you?", "nice weather", "bye for now"):
        await say(runtime, clock, text, gap=7)
    requests = turns(llm)
    for earlier, later in itertools.pairwise(requests):
        context_at = earlier.messages.index(context_of(earlier))
        assert repeats(earlier, later) == context_at  # everything before the context
    first = first_system(requests[-1])
    assert first == first_system(requests[0])
    assert "Current time" not in first and "messages stored" not in first
    context = context_of(requests[-1]).content or ""
    assert "Current time: 2025-01-06 09:28 UTC" in context and "7 messages stored" in context


async def test_an_edit_keeps_the_prefix_and_shows_the_block_after_the_history(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await say(runtime, clock, "hello")
    await say(runtime, clock, "remember Ann keeps bees")
    await say(runtime, clock, "what do you know?")
    before, edit, after = turns(llm)
    assert first_system(after) == first_system(before) == first_system(edit)
    assert "Ann keeps bees" not in first_system(after)
    update = context_of(after).content or ""
    assert "<memory_updates>" in update and "Ann keeps bees" in update
    tool_step = llm.requests[llm.requests.index(edit) + 1]
    assert repeats(edit, tool_step) == len(edit.messages) - 1  # all but the turn context
    assert "Ann keeps bees" in (context_of(tool_step).content or "")
    agent = await storage.load_agent(AgentKey.parse(ANN))
    assert agent is not None
    kept = prefix.decode(agent.prefix_blocks)
    assert kept is not None and "Ann keeps bees" not in str(kept)


async def test_a_new_session_renews_the_view(storage: SQLiteStorage, clock: ManualClock) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await say(runtime, clock, "remember Ann keeps bees")
    await say(runtime, clock, "still here")
    await say(runtime, clock, "back after a week", gap=7 * 24 * 60)
    later = turns(llm)[-1]
    assert "Ann keeps bees" in first_system(later)
    assert "<memory_updates>" not in (context_of(later).content or "")
    await say(runtime, clock, "and again")
    assert first_system(turns(llm)[-1]) == first_system(later)


async def test_the_view_survives_a_restart(storage: SQLiteStorage, clock: ManualClock) -> None:
    first = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, first, clock)
    await say(runtime, clock, "remember Ann keeps bees")
    second = FunctionLLM(model)
    restarted = build_runtime(make_settings(), storage, second, clock)
    await say(restarted, clock, "hello again")
    assert first_system(second.requests[0]) == first_system(first.requests[0])
    assert "Ann keeps bees" in (context_of(second.requests[0]).content or "")


async def test_a_large_rewrite_renews_the_view_on_the_next_turn(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await say(runtime, clock, "remember Ann keeps bees")
    await say(runtime, clock, "rewrite " + "Ann keeps bees and writes long notes. " * 60)
    await say(runtime, clock, "ok")
    latest = turns(llm)[-1]
    assert "writes long notes" in first_system(latest)
    assert "<memory_updates>" not in (context_of(latest).content or "")


async def test_a_fold_renews_the_view(storage: SQLiteStorage, clock: ManualClock) -> None:
    def folding(request: LLMRequest) -> LLMResponse:
        if "running summary" in first_system(request):
            return reply("They talked a lot.")
        return model(request)

    llm = FunctionLLM(folding)
    runtime = build_runtime(make_settings(memory={"context_window": 3000}), storage, llm, clock)
    await say(runtime, clock, "remember Ann keeps bees")
    for i in range(20):
        await say(runtime, clock, f"story {i} " + "words " * 80)
    agent = await storage.load_agent(AgentKey.parse(ANN))
    assert agent is not None and agent.summary == "They talked a lot."
    latest = turns(llm)[-1]
    assert "Ann keeps bees" in first_system(latest) and "They talked a lot." in first_system(latest)
    assert "<memory_updates>" not in (context_of(latest).content or "")


async def test_operator_changes_show_after_the_history(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    admins = frozenset({AgentKey.parse(OPERATOR)})
    runtime = build_runtime(make_settings(runtime={"admins": admins}), storage, llm, clock)
    await runtime.handle(message(clock, "/admin shared rules Be kind.", OPERATOR))
    await say(runtime, clock, "remember Ann keeps bees")  # the view is stored from here on
    await runtime.handle(message(clock, f"/admin set {ANN} human Ann: beekeeper", OPERATOR))
    await runtime.handle(message(clock, "/admin shared rules --delete", OPERATOR))
    await say(runtime, clock, "hi")
    latest = turns(llm)[-1]
    assert "Be kind." in first_system(latest)  # the view, unchanged
    update = context_of(latest).content or ""
    assert "Ann: beekeeper" in update and "The block 'rules' no longer exists." in update


async def test_automatic_recall_goes_in_the_turn_context_and_keeps_the_prefix(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await say(runtime, clock, "My sister Ana lives in Lisbon.")
    await say(runtime, clock, "/reset")  # out of view: only recall can bring it back
    for text in ("hello again", "where does my sister Ana live?", "and is Lisbon sunny?"):
        await say(runtime, clock, text)
    hello, sister, sunny = turns(llm)[-3:]
    for request in (sister, sunny):
        context = context_of(request).content or ""
        assert RECALL_HEADING in context and "My sister Ana lives in Lisbon." in context
        assert context.index("<memory_metadata>") < context.index(RECALL_HEADING)
    assert all(RECALL_HEADING not in (m.content or "") for m in hello.messages)
    assert first_system(hello) == first_system(sister) == first_system(sunny)
    for earlier, later in ((hello, sister), (sister, sunny)):
        assert repeats(earlier, later) == earlier.messages.index(context_of(earlier))


async def test_a_reminder_turn_has_its_context_after_the_event(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = FunctionLLM(model)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await say(runtime, clock, "hello")
    clock.advance(timedelta(minutes=10))
    event = SystemEvent(AgentKey.parse(ANN), "scheduled: stretch", clock.now())
    assert await runtime.run_event(event) == "You said 5 characters."
    before, due = llm.requests
    assert [m.content for m in due.messages[-2:-1]] == ["scheduled: stretch"]
    assert (due.messages[-1].content or "").startswith("<memory_metadata>")
    assert first_system(due) == first_system(before)
    assert repeats(before, due) == before.messages.index(context_of(before))
