"""Agent File import made safe: an imported agent always fits, its history is one a model API
accepts, a hostile file is refused in one line, and an import never interleaves with a turn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.clock import ManualClock
from agentcore.commands.agentfile import AgentFileError, ImportLimits, parse_agent_file
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply, system_text
from agentcore.memory.blocks import default_blocks
from agentcore.messages import PromptMessage, Role
from agentcore.settings import MemorySettings
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ReplyKind
from bots.compose import build_runtime
from tests.conftest import make_settings, message

NOW = datetime(2025, 3, 1, tzinfo=UTC)
DEFAULTS = default_blocks(MemorySettings())  # persona and human, 5,000 characters each
OPERATOR = "console:root"


def agent_file(
    messages: list[dict[str, Any]] | None = None,
    blocks: list[dict[str, Any]] | None = None,
    passages: list[dict[str, Any]] | None = None,
) -> str:
    return json.dumps(
        {
            "agents": [{"name": "sam", "messages": messages or []}],
            "blocks": blocks or [],
            "passages": passages or [],
        }
    )


def said(role: str, text: str = "", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}] if text else [], **extra}


def tool_call(call_id: str, name: str = "core_memory_append") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def assert_tool_calls_paired(messages: list[PromptMessage]) -> None:
    """What a model API demands: each tool call answered by results right after it, and no
    result without its call."""
    expected: list[str] = []
    for m in messages:
        if m.role is Role.TOOL:
            assert expected and m.tool_call_id == expected.pop(0), m
        else:
            assert not expected, f"unanswered tool calls {expected}"
            expected = [c.id for c in m.tool_calls]
    assert not expected, f"unanswered tool calls {expected}"


# ----------------------------------------------------------------- parsing


def test_a_huge_block_is_cut_to_the_configured_limit_with_a_note() -> None:
    huge = "x" * 10_000_000
    parsed = parse_agent_file(
        agent_file(blocks=[{"label": "human", "value": huge, "limit": 10_000_000}]), DEFAULTS, NOW
    )
    human = next(b for b in parsed.snapshot.blocks if b.label == "human")
    assert (len(human.value), human.limit) == (5000, 5000)
    assert parsed.notes == ("block human was cut from 10,000,000 to 5,000 characters",)
    custom = parse_agent_file(
        agent_file(blocks=[{"label": "notes", "value": "short", "limit": 10**9}]), DEFAULTS, NOW
    )
    notes = next(b for b in custom.snapshot.blocks if b.label == "notes")
    assert notes.limit == 5000 and custom.notes == ()  # capped, nothing cut


def test_counts_and_sizes_are_capped_keeping_the_newest() -> None:
    limits = ImportLimits(max_messages=3, max_passages=2, max_message_chars=10, max_blocks=1)
    raw = agent_file(
        messages=[said("user", f"message {i}") for i in range(5)] + [said("user", "y" * 50)],
        blocks=[{"label": f"b{i}", "value": "v"} for i in range(3)],
        passages=[{"content": f"note {i}"} for i in range(4)],
    )
    parsed = parse_agent_file(raw, DEFAULTS, NOW, limits)
    snapshot = parsed.snapshot
    assert [m.content for m in snapshot.messages] == ["message 3", "message 4", "y" * 10]
    assert [p.content for p in snapshot.passages] == ["note 2", "note 3"]
    assert [b.label for b in snapshot.blocks] == ["b0", "persona", "human"]
    assert parsed.notes == (
        "only the first 1 of 3 blocks were imported",
        "only the newest 3 of 6 messages were imported",
        "1 messages over 10 characters were shortened",
        "only the newest 2 of 4 passages were imported",
    )
    with pytest.raises(AgentFileError, match="over the import limit of 1 MB"):
        parse_agent_file(" " * (2**20 + 1), DEFAULTS, NOW, ImportLimits(max_bytes=2**20))


def test_dangling_tool_calls_and_stray_results_are_dropped() -> None:
    raw = agent_file(
        messages=[
            said("tool", "orphan result", tool_call_id="nobody"),
            said("user", "hi"),
            said("assistant", "thinking", tool_calls=[tool_call("a"), tool_call("b")]),
            said("tool", "result a", tool_call_id="a"),
            said("user", "still there?"),
            said("assistant", "", tool_calls=[tool_call("c")]),  # the history ends here
        ]
    )
    parsed = parse_agent_file(raw, DEFAULTS, NOW)
    messages = parsed.snapshot.messages
    assert [(m.role.value, m.content) for m in messages] == [
        ("user", "hi"),
        ("assistant", "thinking"),
        ("tool", "result a"),
        ("user", "still there?"),
    ]
    assert [c.id for c in messages[1].tool_calls] == ["a"]
    assert parsed.notes == (
        "2 tool calls without a result and 1 tool results without a call were dropped",
    )


def test_unknown_roles_are_reported_and_a_file_of_only_those_is_refused() -> None:
    mixed = agent_file(messages=[said("human", "hi"), said("user", "hello"), said("ai", "yo")])
    parsed = parse_agent_file(mixed, DEFAULTS, NOW)
    assert [m.content for m in parsed.snapshot.messages] == ["hello"]
    assert parsed.notes == ("2 messages with unknown roles were skipped (human: 1, ai: 1)",)
    alien = agent_file(messages=[said("human", "hi"), said("bot", "yo"), said("system", "x")])
    with pytest.raises(AgentFileError, match=r"none of its 3 messages has a role we know"):
        parse_agent_file(alien, DEFAULTS, NOW)


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deep_nesting_is_refused_not_a_recursion_error(depth: int) -> None:
    nested = '{"agents": [{"messages": [' + "[" * depth + "]" * depth + "]}]}"
    with pytest.raises(AgentFileError, match="nested too deeply"):
        parse_agent_file(nested, DEFAULTS, NOW)


def test_bad_labels_and_hostile_text_are_refused_or_cleaned() -> None:
    with pytest.raises(AgentFileError, match="block label 'a b' is not one word"):
        parse_agent_file(agent_file(blocks=[{"label": "a b", "value": "v"}]), DEFAULTS, NOW)
    parsed = parse_agent_file(
        agent_file(messages=[said("user", "nul\x00 and \ud800 lone")]), DEFAULTS, NOW
    )
    assert parsed.snapshot.messages[0].content == "nul and \ufffd lone"


# ----------------------------------------------------------------- through the runtime


async def test_an_imported_agent_fits_its_window_and_its_requests_are_valid(
    storage: SQLiteStorage, clock: ManualClock, tmp_path: Path
) -> None:
    llm = FunctionLLM(lambda r: reply("hello again"))
    runtime = build_runtime(make_settings(), storage, llm, clock)
    path = tmp_path / "big.af"
    path.write_text(
        agent_file(
            blocks=[{"label": "human", "value": "fact " * 2_000_000, "limit": 10_000_000}],
            messages=[said("user", "hi"), said("assistant", "", tool_calls=[tool_call("x")])],
        )
    )
    result = await runtime.handle(message(clock, f"/admin import telegram:5 {path}", OPERATOR))
    assert result.kind is ReplyKind.COMMAND
    assert result.text.splitlines() == [
        "Imported telegram:5: 2 blocks, 1 messages, 0 passages.",
        "Changed to fit:",
        "- block human was cut from 10,000,000 to 5,000 characters",
        "- 1 tool calls without a result and 0 tool results without a call were dropped",
    ]
    assert (await runtime.handle(message(clock, "hi", "telegram:5"))).text == "hello again"
    [request] = llm.requests
    assert len(system_text(request)) < 20_000
    assert_tool_calls_paired(list(request.messages))
    shown = await runtime.handle(message(clock, "/memory", "telegram:5"))
    assert len(shown.text) < 12_000


async def test_a_hostile_file_gets_one_line(
    storage: SQLiteStorage, clock: ManualClock, tmp_path: Path
) -> None:
    runtime = build_runtime(make_settings(), storage, FunctionLLM(lambda r: reply("x")), clock)
    path = tmp_path / "deep.af"
    path.write_text("[" * 100_000)
    answer = await runtime.handle(message(clock, f"/admin import telegram:5 {path}", OPERATOR))
    assert answer.kind is ReplyKind.ERROR
    assert (
        answer.text == f"{path} is not an Agent File we can import: its JSON is nested too deeply"
    )


async def test_an_import_waits_for_that_persons_running_turn(
    storage: SQLiteStorage, clock: ManualClock, tmp_path: Path
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        asked.set()
        await release.wait()
        return reply("answered")

    runtime = build_runtime(make_settings(), storage, FunctionLLM(slow), clock)
    path = tmp_path / "sam.af"
    path.write_text(agent_file(messages=[said("user", "imported history")]))
    person = AgentKey.parse("telegram:5")
    turn = asyncio.create_task(runtime.handle(message(clock, "live message", str(person))))
    await asked.wait()
    command = f"/admin import {person} {path}"
    with logged("import of telegram:5 waits for their running turn") as waiting:
        importing = asyncio.create_task(runtime.handle(message(clock, command, OPERATOR)))
        await asyncio.wait_for(waiting.wait(), 10)
    assert not importing.done()
    release.set()
    assert (await turn).text == "answered"  # the turn finished whole, before the import
    assert (await importing).text.startswith("Imported telegram:5")
    agent = await storage.load_agent(person)
    assert agent is not None
    assert [m.content for m in await storage.all_messages(agent.id)] == ["imported history"]


async def test_an_operator_may_import_over_their_own_agent(
    storage: SQLiteStorage, clock: ManualClock, tmp_path: Path
) -> None:
    runtime = build_runtime(make_settings(), storage, FunctionLLM(lambda r: reply("x")), clock)
    path = tmp_path / "me.af"
    path.write_text(agent_file(messages=[said("user", "my old history")]))
    answer = await asyncio.wait_for(
        runtime.handle(message(clock, f"/admin import {OPERATOR} {path}", OPERATOR)), 10
    )
    assert answer.text.startswith(f"Imported {OPERATOR}")  # no deadlock on their own turn lock


@contextlib.contextmanager
def logged(text: str) -> Iterator[asyncio.Event]:
    """An event set when a log line holding ``text`` is written."""
    seen = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    watch, root = Watch(logging.INFO), logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        root.removeHandler(watch)
        root.setLevel(level)


def test_imported_timestamps_keep_their_zone() -> None:
    raw = agent_file(messages=[said("user", "hi", created_at="2025-01-02T03:04:05+02:00")])
    [stored] = parse_agent_file(raw, DEFAULTS, NOW).snapshot.messages
    assert stored.created_at == datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert stored.created_at - NOW < timedelta(0)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_MESSAGE = st.dictionaries(
    st.sampled_from(["id", "role", "content", "tool_calls", "tool_call_id", "created_at"]),
    st.sampled_from(["user", "assistant", "tool", "system", "bot"]) | _JSON,
)
_AGENT = st.dictionaries(
    st.sampled_from(["name", "messages", "block_ids", "in_context_message_ids"]),
    st.lists(_MESSAGE, max_size=4) | _JSON,
)
_FILE = st.fixed_dictionaries(
    {"agents": st.lists(_AGENT, min_size=1, max_size=2)},
    optional={
        "blocks": st.lists(_JSON | _MESSAGE, max_size=3),
        "passages": _JSON,
        "agentcore": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(_FILE)
def test_any_shape_of_file_is_imported_or_refused_in_one_line(document: dict[str, Any]) -> None:
    try:
        parsed = parse_agent_file(json.dumps(document), DEFAULTS, NOW)
    except AgentFileError as exc:
        assert "\n" not in str(exc)
        return
    assert_tool_calls_paired(
        [
            PromptMessage(m.role, m.content, m.tool_calls, m.tool_call_id)
            for m in parsed.snapshot.messages
        ]
    )
    assert all(len(b.value) <= b.limit <= 5000 for b in parsed.snapshot.blocks)
