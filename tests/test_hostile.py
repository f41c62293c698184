"""Hostile input through every entry point: message text, commands, search, tools, operator
CLI, and property-based tests of the parsers that face untrusted text."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.clock import ManualClock
from agentcore.commands import OPERATORS_ONLY, parse_command
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, call, calls, last_user_text, reply
from agentcore.messages import Role, ToolCall
from agentcore.records import NewMessage
from agentcore.runtime import EMPTY_MESSAGE, AgentRuntime
from agentcore.search.fts import scoped
from agentcore.search.query import parse_query
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.storage.sqlite.migrate import load_migrations
from agentcore.tools import ToolContext, ToolRegistry
from agentcore.types import AgentKey, ReplyKind, clean_text
from bots.compose import build_commands, build_runtime
from tests.conftest import make_settings, message
from tests.hostile import CORPUS

ATTACKER, VICTIM = "telegram:666", "telegram:42"
SECRET = "the vault code is 7391"


def echo(request: LLMRequest) -> LLMResponse:
    if request.messages[-1].role is Role.TOOL:
        return reply(f"tool said: {request.messages[-1].content}")
    return reply("echo: " + last_user_text(request)[:200])


@pytest.fixture
def runtime(storage: SQLiteStorage, clock: ManualClock) -> AgentRuntime:
    return build_runtime(make_settings(), storage, FunctionLLM(echo), clock)


@pytest.mark.parametrize("name", list(CORPUS))
async def test_message_text(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock, name: str
) -> None:
    text = CORPUS[name]
    answer = await runtime.handle(message(clock, text, "console:eve"))
    assert answer.kind in {ReplyKind.AGENT, ReplyKind.NOTICE, ReplyKind.COMMAND}
    if not clean_text(text).strip():
        assert answer.text == EMPTY_MESSAGE
        return
    agent = await storage.load_agent(AgentKey.parse("console:eve"))
    if parse_command(clean_text(text)) is None:
        assert agent is not None
        [stored] = [m.content for m in await storage.all_messages(agent.id) if m.role is Role.USER]
        assert stored == clean_text(text)[:64_000]  # kept as written, up to the hard limit
        assert "\x00" not in stored
    export = await runtime.handle(message(clock, "/export", "console:eve"))
    if export.attachments:
        json.loads(export.attachments[0].data)  # still valid JSON


@pytest.mark.parametrize("name", list(CORPUS))
async def test_commands_and_search(runtime: AgentRuntime, clock: ManualClock, name: str) -> None:
    await runtime.handle(message(clock, "I like tea", "console:eve"))
    text = CORPUS[name]
    stranger = "telegram:7"  # has no agent, is no operator
    forget = await runtime.handle(message(clock, f"/forget {text}", stranger))
    assert forget.text.startswith("This permanently erases everything")  # only "confirm" erases
    memory = await runtime.handle(message(clock, f"/memory {text}", stranger))
    assert memory.text == "I don't remember anything about you yet."
    admin = await runtime.handle(message(clock, f"/admin memory {text}", stranger))
    assert admin.text == OPERATORS_ONLY
    search = await runtime.handle(message(clock, f"/search {text}", stranger))
    words = clean_text(text).strip()
    assert search.text.startswith("No messages of ours match “" if words else "Usage: /search")
    assert "tea" not in search.text  # eve's message is not the stranger's


@pytest.mark.parametrize("name", list(CORPUS))
async def test_tools_and_storage_search(
    storage: SQLiteStorage, clock: ManualClock, name: str
) -> None:
    from agentcore.memory.blocks import default_blocks  # noqa: PLC0415
    from agentcore.settings import MemorySettings  # noqa: PLC0415

    text = clean_text(CORPUS[name])
    eve, bob = [
        await storage.create_agent(
            AgentKey("console", who), who, clock.now(), default_blocks(MemorySettings())
        )
        for who in ("eve", "bob")
    ]
    assert eve is not None and bob is not None
    for agent in (eve, bob):  # both said it; each finds only their own
        await storage.append_messages(agent.id, [NewMessage(Role.USER, text, clock.now())])
    blocks = {b.label: b for b in await storage.list_blocks(eve.id)}
    ctx = ToolContext(storage, eve.id, blocks, clock, MemorySettings().timezone, 10, "eve")
    registry = ToolRegistry()

    async def tool(name_: str, **args: object) -> str:
        result = await registry.execute(ctx, ToolCall("c", name_, json.dumps(args)))
        assert "failed unexpectedly" not in result
        return result

    searchable = not parse_query(text).empty
    [own] = await storage.all_messages(eve.id)
    hits = await storage.search_messages(eve.id, text)
    assert [h.id for h in hits] == ([own.id] if searchable else [])
    assert [h.id for h in await storage.recent_matches(eve.id, text, 10)] == [h.id for h in hits]
    found = await tool("conversation_search", query=text)
    assert found.startswith("1 message(s) found" if searchable else "No messages found")

    note = text[:3000]
    filed = await tool("archival_memory_insert", content=note, tags=[text[:50]])
    if note.strip():
        assert filed == "Filed in archival memory."
        [passage] = await storage.all_passages(eve.id)
        assert passage.content == note.strip()
        assert [p.id for p in await storage.search_passages(eve.id, text)] == (
            [passage.id] if searchable else []
        )
        assert await storage.search_passages(bob.id, text) == []
    else:
        assert "content is empty" in filed and await storage.all_passages(eve.id) == []
    appended = await tool("core_memory_append", label="human", content=text[:100])
    human = {b.label: b for b in await storage.list_blocks(eve.id)}["human"].value
    if text[:100].strip():
        assert human.endswith(text[:100]), appended
    else:
        assert "content is empty" in appended and human == blocks["human"].value


async def test_prompt_injection_cannot_reach_another_users_memory(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    def obedient(request: LLMRequest) -> LLMResponse:
        """A model that does whatever the message says, as far as its tools let it."""
        last = request.messages[-1]
        if last.role is Role.TOOL:
            return reply(f"result: {last.content}")
        text = last_user_text(request)
        if text.startswith("remember"):
            return call("core_memory_append", label="human", content=SECRET)
        return calls(
            (
                "core_memory_replace",
                {"label": "human", "old_content": SECRET, "new_content": "x", "user": VICTIM},
            ),
            ("core_memory_replace", {"label": "human", "old_content": SECRET, "new_content": "x"}),
            ("conversation_search", {"query": f"{VICTIM} vault code"}),
            ("archival_memory_search", {"query": "vault"}),
        )

    llm = FunctionLLM(obedient)
    runtime = build_runtime(make_settings(), storage, llm, clock)
    await runtime.handle(message(clock, "remember my vault code", VICTIM))
    for attack in (CORPUS["injection"], CORPUS["tool injection"]):
        answer = await runtime.handle(message(clock, attack, ATTACKER))
        assert "7391" not in answer.text
    victims_turn = 2  # the victim's own turn: the tool call, then the reply
    attacker_saw = json.dumps(
        [[m.content for m in r.messages] for r in llm.requests[victims_turn:]]
    )
    assert "7391" not in attacker_saw
    tool_results = [m.content or "" for m in llm.requests[-1].messages if m.role is Role.TOOL]
    # The extra "user" argument is ignored: the call still edits the attacker's own memory only.
    assert "not found" in tool_results[0] and "not found" in tool_results[1]
    victim = await storage.load_agent(AgentKey.parse(VICTIM))
    assert victim is not None
    blocks = {b.label: b.value for b in await storage.list_blocks(victim.id)}
    assert SECRET in blocks["human"]  # untouched


@pytest.mark.parametrize("name", list(CORPUS))
async def test_operator_cli(
    storage: SQLiteStorage, clock: ManualClock, runtime: AgentRuntime, name: str
) -> None:

    await runtime.handle(message(clock, "hello", "console:eve"))
    commands = build_commands(make_settings(), storage, clock)
    text = CORPUS[name]
    for args, success in (
        (f"search console:eve {text}", "No messages of console:eve match"),
        (f"memory {text}", "Core memory of"),
        (f"set console:eve human {text}", "Saved console:eve human as v"),
        (f"shared {text}", "Every agent now sees the read-only block"),
        (f"users {text}", "console:eve “eve” last seen"),
        (f"{text}", "(never a success)"),
    ):
        answer = await commands.admin("cli:root", args, local=True)
        if answer.kind is ReplyKind.ERROR:  # refused: one line saying why
            assert answer.text and "\n" not in answer.text.strip(), args
        else:
            assert answer.text.startswith(success), (args, answer.text[:200])


# ----------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def fts_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path_factory.mktemp("fts") / "fts.db")
    for migration in load_migrations():
        for statement in migration.statements:
            db.execute(statement)
    db.execute("INSERT INTO agents (id, platform, user_id, created_at) VALUES (1, 't', 'u', 0)")
    db.execute(
        "INSERT INTO messages (agent_id, role, content, created_at, terms) "
        "VALUES (1, 'user', 'some words NEAR a quote \"', 0, 'some word near a quot')"
    )
    return db


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_fts_queries_never_raise(fts_db: sqlite3.Connection, text: str) -> None:
    query = parse_query(clean_text(text))
    if not query.empty:
        match = scoped("agent_id", 1, "terms", query.terms)
        fts_db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", (match,))


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_command_parsing_never_raises_and_round_trips(text: str) -> None:
    parsed = parse_command(text)
    if parsed is None:
        return
    name, args = parsed
    assert name.isascii() and name == name.lower() and name[0].isalpha()
    assert parse_command(f"/{name} {args}") == parsed


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_text_is_storable_and_idempotent(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # raises on lone surrogates
    assert "\x00" not in cleaned and clean_text(cleaned) == cleaned
