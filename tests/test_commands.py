"""User and operator commands through the runtime, as every adapter uses them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.commands import OPERATORS_ONLY
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, call, last_user_text, reply, system_text
from agentcore.messages import Role
from agentcore.runtime import NOT_ALLOWED, AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, Reply, ReplyKind
from bots.compose import build_runtime
from tests.conftest import make_settings, message

FIXTURES = Path(__file__).parent / "fixtures"
ALICE, BOB, OPERATOR = "telegram:1", "telegram:2", "telegram:99"


def chatty_model(request: LLMRequest) -> LLMResponse:
    """Remembers "I like X" in core memory and archival memory; otherwise echoes."""
    last = request.messages[-1]
    if last.role is Role.TOOL:
        return reply("Noted!")
    text = last_user_text(request)
    if text.startswith("I like "):
        return call("core_memory_append", label="human", content=text)
    if text.startswith("Note: "):
        return call("archival_memory_insert", content=text[6:])
    return reply(f"echo: {text}")


@pytest.fixture
def llm() -> FunctionLLM:
    return FunctionLLM(chatty_model)


@pytest.fixture
def runtime(storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock) -> AgentRuntime:
    admins = frozenset({AgentKey.parse(OPERATOR)})
    return build_runtime(make_settings(runtime={"admins": admins}), storage, llm, clock)


async def say(
    runtime: AgentRuntime, clock: ManualClock, text: str, user: str = ALICE, **kw: object
) -> Reply:
    clock.advance(timedelta(minutes=1))
    return await runtime.handle(message(clock, text, user, **kw))  # type: ignore[arg-type]


async def test_memory_shows_blocks_privately(runtime: AgentRuntime, clock: ManualClock) -> None:
    await say(runtime, clock, "I like sailing")
    shown = await say(runtime, clock, "/memory")
    assert shown.private and shown.kind is ReplyKind.COMMAND
    assert (
        "**human** (" in shown.text
        and "I like sailing" in shown.text
        and "/5000 chars" in shown.text
    )


async def test_search_newest_first_with_dates_max_ten(
    runtime: AgentRuntime, clock: ManualClock
) -> None:
    for i in range(14):
        await say(runtime, clock, f"kayak trip number {i}")
    found = await say(runtime, clock, "/search kayak")
    lines = found.text.splitlines()[1:]
    assert len(lines) == 10
    assert "kayak trip number 13" in lines[0]  # the model's echo of 13 is newer still
    assert lines[0].startswith("[2025-01-06 09:") or lines[0].startswith("[2025-01-06")
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert numbers == sorted(numbers, reverse=True)
    assert "Usage: /search <words>" in (await say(runtime, clock, "/search")).text
    assert "No messages" in (await say(runtime, clock, "/search zeppelin")).text


async def test_reset_clears_window_but_keeps_memory(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock, llm: FunctionLLM
) -> None:
    await say(runtime, clock, "I like tea")
    await say(runtime, clock, "Note: Alice's cat is Miso")
    answer = await say(runtime, clock, "/reset")
    assert "core memory" in answer.text and "searchable" in answer.text
    await say(runtime, clock, "hello again")
    request = llm.requests[-1]
    assert [m.content for m in request.messages if m.role is Role.USER] == ["hello again"]
    assert "I like tea" in system_text(request)  # core memory stays
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None and agent.passage_count == 1
    assert await storage.search_messages(agent.id, "tea")  # history stays searchable


async def test_export_is_a_letta_agent_file(runtime: AgentRuntime, clock: ManualClock) -> None:
    await say(runtime, clock, "I like kites")
    await say(runtime, clock, "Note: birthday is in May")
    exported = await say(runtime, clock, "/export")
    assert exported.private and len(exported.attachments) == 1
    attachment = exported.attachments[0]
    assert attachment.filename == "memory-telegram-2025-01-06.af"  # no user id in it
    document = json.loads(attachment.data)
    [agent] = document["agents"]
    texts = [part["text"] for m in agent["messages"] for part in m["content"]]
    assert "I like kites" in texts and "Note: birthday is in May" in texts
    assert all(m["created_at"].startswith("2025-01-06") for m in agent["messages"])
    assert {b["label"] for b in document["blocks"]} == {"persona", "human"}
    assert set(agent["block_ids"]) == {b["id"] for b in document["blocks"]}
    assert document["passages"][0]["content"] == "birthday is in May"
    assert document["agentcore"]["block_history"]["human"][0]["actor"] == "agent"
    assert "don't have anything" in (await say(runtime, clock, "/export", BOB)).text


async def test_forget_needs_confirmation_within_two_minutes(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    await say(runtime, clock, "I like secrets")
    assert "/forget confirm" in (await say(runtime, clock, "/forget")).text
    clock.advance(timedelta(minutes=3))
    assert "send /forget first" in (await say(runtime, clock, "/forget confirm")).text
    assert await storage.load_agent(AgentKey.parse(ALICE)) is not None
    await say(runtime, clock, "/forget")
    done = await say(runtime, clock, "/forget confirm")
    assert "erased everything" in done.text


async def test_after_forget_nothing_can_be_found(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    await say(runtime, clock, "I like pistachio ice cream")
    await say(runtime, clock, "Note: pistachio is the favourite")
    await say(runtime, clock, f"/admin memory {ALICE}", OPERATOR)  # an audited read naming her
    await say(runtime, clock, "/forget")
    await say(runtime, clock, "/forget confirm")
    assert "don't remember anything" in (await say(runtime, clock, "/memory")).text
    assert "No messages" in (await say(runtime, clock, "/search pistachio")).text
    assert "don't have anything" in (await say(runtime, clock, "/export")).text
    assert (
        "No agent" in (await say(runtime, clock, f"/admin search {ALICE} pistachio", OPERATOR)).text
    )
    audit = (await say(runtime, clock, "/admin audit 50", OPERATOR)).text
    assert "forget telegram:(erased)" in audit and ALICE not in audit and "pistachio" not in audit
    answer = await say(runtime, clock, "hello?")  # a new message starts a new agent
    assert answer.text == "echo: hello?"
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None and agent.message_count == 2 and agent.passage_count == 0


async def test_operator_edits_history_revert_and_audit(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock, llm: FunctionLLM
) -> None:
    await say(runtime, clock, "I like chess")
    saved = await say(
        runtime, clock, f"/admin set {ALICE} human Name: Alice. Plays chess.", OPERATOR
    )
    assert saved.private and "as v3" in saved.text
    appended = await say(runtime, clock, f"/admin append {ALICE} human Lives in Porto.", OPERATOR)
    assert "as v4" in appended.text
    history = (await say(runtime, clock, f"/admin history {ALICE} human", OPERATOR)).text
    assert "**v1** system" in history and "**v2** agent" in history
    assert f"**v3** operator {OPERATOR}" in history and "+Lives in Porto." in history
    assert "-Nothing is known" in history
    reverted = await say(runtime, clock, f"/admin revert {ALICE} human 2", OPERATOR)
    assert "to v2, saved as v5" in reverted.text
    await say(runtime, clock, "what do you know?")
    assert "I like chess" in system_text(llm.requests[-1])
    assert "Porto" not in system_text(llm.requests[-1])
    audit = (await say(runtime, clock, "/admin audit", OPERATOR)).text.splitlines()
    verbs = [line.split()[3] for line in audit]
    assert verbs[:4] == ["revert", "history", "append", "set"]
    assert all(OPERATOR in line and ALICE in line for line in audit[:4])


async def test_operator_over_limit_edit_warns(runtime: AgentRuntime, clock: ManualClock) -> None:
    await say(runtime, clock, "hi")
    big = "x" * 5100
    answer = await say(runtime, clock, f"/admin set {ALICE} human {big}", OPERATOR)
    assert "Warning" in answer.text and "over the block's limit of 5000" in answer.text


async def test_operator_reads(runtime: AgentRuntime, clock: ManualClock) -> None:
    await say(runtime, clock, "I like origami", name="Alice")
    await say(runtime, clock, "hello", BOB)
    users = (await say(runtime, clock, "/admin users", OPERATOR)).text.splitlines()
    assert users[0].startswith(f"{BOB} ") and "2 messages" in users[0]
    assert "Alice" in users[1]
    memory = (await say(runtime, clock, f"/admin memory {ALICE} human", OPERATOR)).text
    assert "origami" in memory and "persona" not in memory
    found = (await say(runtime, clock, f"/admin search {ALICE} origami", OPERATOR)).text
    assert "user: I like origami" in found
    stats = (await say(runtime, clock, "/admin stats", OPERATOR)).text
    assert "2 users" in stats and "model calls today" in stats


async def test_shared_block_reaches_every_agent(
    runtime: AgentRuntime, clock: ManualClock, llm: FunctionLLM
) -> None:
    answer = await say(runtime, clock, "/admin shared server No spoilers in #general.", OPERATOR)
    assert "read-only block server" in answer.text
    await say(runtime, clock, "hi", BOB)
    prompt = system_text(llm.requests[-1])
    assert "<server>" in prompt and "No spoilers" in prompt and "read_only=true" in prompt
    await say(runtime, clock, "/admin shared server --delete", OPERATOR)
    await say(runtime, clock, "hi again", BOB)
    assert "No spoilers" not in system_text(llm.requests[-1])


@pytest.mark.parametrize(
    "text",
    [
        "/admin users",
        f"/admin memory {ALICE}",
        "/admin nonsense",
        "/admin memory telegram:404",
        "/admin",
    ],
)
async def test_non_operators_are_refused_and_learn_nothing(
    runtime: AgentRuntime, clock: ManualClock, text: str
) -> None:
    await say(runtime, clock, "hello")
    answer = await say(runtime, clock, text, BOB)
    assert answer.text == OPERATORS_ONLY


async def test_operator_commands_only_in_private(runtime: AgentRuntime, clock: ManualClock) -> None:
    answer = await say(runtime, clock, "/admin users", OPERATOR, chat=ChatKind.GROUP)
    assert "private chat" in answer.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/admin frobnicate", "Usage: /admin <verb>"),
        ("/admin memory", "Usage: /admin memory <user> [label]"),
        ("/admin memory brad", "is not a user"),
        ("/admin memory telegram:404", "No agent for telegram:404"),
        (f"/admin memory {ALICE} pets", "has no block 'pets'"),
        (f"/admin set {ALICE} human", "Usage: /admin set <user> <label> <text>"),
        (f"/admin revert {ALICE} human seven", "Usage: /admin revert"),
        (f"/admin revert {ALICE} human 9", "has versions 1 to"),
        ("/admin users many", "Usage: /admin users [N]"),
        (f"/admin import {ALICE} /etc/passwd", "run `python -m bots admin import` there"),
        ("/admin shared server --delete extra", "Send `/admin shared server --delete` with"),
        ("/admin shared server --force text", "block text cannot start with --"),
        ("/admin shared rules! Be nice", "A block label is one word of letters, digits"),
        (f"/admin set {ALICE} hu<man> text", "A block label is one word"),
        (f"/admin memory {ALICE} {'x' * 60}", "A block label is one word"),
    ],
)
async def test_operator_usage_errors_are_one_line(
    runtime: AgentRuntime, clock: ManualClock, text: str, expected: str
) -> None:
    await say(runtime, clock, "hello")
    answer = await say(runtime, clock, text, OPERATOR)
    assert expected in answer.text and "\n" not in answer.text.strip()
    assert answer.kind is ReplyKind.ERROR


async def test_agent_file_round_trip(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock, tmp_path: Path
) -> None:
    await say(runtime, clock, "I like pottery")
    await say(runtime, clock, "Note: kiln is on Tuesdays")
    await say(runtime, clock, "how are you?")
    exported = await say(runtime, clock, "/export")
    path = tmp_path / "alice.af"
    path.write_bytes(exported.attachments[0].data)
    result = await say(runtime, clock, f"/admin import telegram:3 {path}", "console:root")
    assert "Imported telegram:3" in result.text
    alice = await storage.load_agent(AgentKey.parse(ALICE))
    clone = await storage.load_agent(AgentKey.parse("telegram:3"))
    assert alice is not None and clone is not None

    async def contents(agent_id: int) -> tuple[list[Any], list[Any]]:
        blocks = [(b.label, b.value, b.limit) for b in await storage.list_blocks(agent_id)]
        messages = await storage.all_messages(agent_id)
        return blocks, [(m.role, m.content, m.created_at, m.tool_calls) for m in messages]

    assert await contents(clone.id) == await contents(alice.id)
    assert [p.content for p in await storage.all_passages(clone.id)] == ["kiln is on Tuesdays"]
    assert clone.message_count == alice.message_count


async def test_letta_made_agent_file_imports(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock, llm: FunctionLLM
) -> None:
    answer = await say(
        runtime, clock, f"/admin import telegram:7 {FIXTURES / 'letta_agent.af'}", "console:root"
    )
    assert "Imported telegram:7: 2 blocks, 4 messages" in answer.text
    agent = await storage.load_agent(AgentKey.parse("telegram:7"))
    assert agent is not None
    messages = await storage.all_messages(agent.id)
    assert messages[0].content == "Hi Sam, I'm Chad and I sail on weekends."  # unwrapped
    assert messages[1].tool_calls[0].name == "core_memory_append"
    assert messages[3].content == "Nice to meet you, Chad! Where do you sail?"  # send_message
    await say(runtime, clock, "Do you remember me?", "telegram:7")
    request = llm.requests[-1]
    assert "First name: Chad" in system_text(request) and "I am Sam" in system_text(request)
    assert any(m.role is Role.TOOL and m.tool_call_id == "call-1" for m in request.messages)


async def test_bad_agent_files_are_refused(
    runtime: AgentRuntime, clock: ManualClock, tmp_path: Path
) -> None:
    for name, content in [
        ("a.af", "not json"),
        ("b.af", '{"agents": []}'),
        ("c.af", '{"agents": [{"blocks": 3}], "blocks": {}}'),
    ]:
        (tmp_path / name).write_text(content)
        answer = await say(
            runtime, clock, f"/admin import telegram:8 {tmp_path / name}", "console:x"
        )
        assert "is not an Agent File we can import" in answer.text
    missing = await say(
        runtime, clock, f"/admin import telegram:8 {tmp_path / 'nope.af'}", "console:x"
    )
    assert "Cannot read" in missing.text


async def test_allowlist_refuses_politely_once_a_day(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    settings = make_settings(runtime={"allowed": frozenset({AgentKey.parse(ALICE)})})
    runtime = build_runtime(settings, storage, llm, clock)
    assert (await say(runtime, clock, "hi", ALICE)).text == "echo: hi"
    assert (await say(runtime, clock, "hi", BOB)).text == NOT_ALLOWED
    assert (await say(runtime, clock, "hi again", BOB)).is_empty
    assert (await say(runtime, clock, "/memory", BOB)).is_empty
    clock.advance(timedelta(days=1))
    assert (await say(runtime, clock, "hi", BOB)).text == NOT_ALLOWED
    assert await storage.load_agent(AgentKey.parse(BOB)) is None
    assert len(llm.requests) == 1
