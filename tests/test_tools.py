"""Each memory tool's success and error paths, against real SQLite storage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentcore.clock import ManualClock
from agentcore.memory.blocks import default_blocks
from agentcore.messages import Role, ToolCall
from agentcore.records import Actor, NewMessage
from agentcore.settings import MemorySettings
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.tools import ToolContext, ToolRegistry
from agentcore.types import AgentKey

REGISTRY = ToolRegistry()


@pytest.fixture
async def ctx(storage: SQLiteStorage, clock: ManualClock) -> ToolContext:
    settings = MemorySettings(human="", human_limit=60)
    agent = await storage.create_agent(
        AgentKey("console", "brad"), "brad", clock.now(), default_blocks(settings)
    )
    assert agent is not None
    blocks = {b.label: b for b in await storage.list_blocks(agent.id)}
    return ToolContext(storage, agent.id, blocks, clock, settings.timezone, 10, "brad")


async def run(ctx: ToolContext, name: str, arguments: str) -> str:
    return await REGISTRY.execute(ctx, ToolCall("c1", name, arguments))


async def test_append_saves_and_records_history(ctx: ToolContext, storage: SQLiteStorage) -> None:
    result = await run(ctx, "core_memory_append", '{"label": "human", "content": "Name: Brad"}')
    assert result.startswith("Saved.") and "10/60" in result
    assert ctx.blocks["human"].value == "Name: Brad"
    [version] = await storage.block_history(ctx.agent_id, "human")
    assert version.actor is Actor.AGENT and version.new_value == "Name: Brad"


async def test_append_over_limit_is_refused_with_rethink_hint(ctx: ToolContext) -> None:
    result = await run(ctx, "core_memory_append", f'{{"label": "human", "content": "{"x" * 61}"}}')
    assert result.startswith("Error:") and "memory_rethink" in result and "limit of 60" in result
    assert ctx.blocks["human"].value == ""


async def test_replace_and_its_errors(ctx: ToolContext) -> None:
    await run(ctx, "core_memory_append", '{"label": "human", "content": "Lives in Oslo"}')
    ok = await run(
        ctx,
        "core_memory_replace",
        '{"label": "human", "old_content": "Oslo", "new_content": "Bergen"}',
    )
    assert ok.startswith("Saved.") and ctx.blocks["human"].value == "Lives in Bergen"
    missing = await run(
        ctx, "core_memory_replace", '{"label": "human", "old_content": "Paris", "new_content": "x"}'
    )
    assert "not found" in missing
    too_long = await run(
        ctx,
        "core_memory_replace",
        f'{{"label": "human", "old_content": "Bergen", "new_content": "{"y" * 80}"}}',
    )
    assert "memory_rethink" in too_long
    assert ctx.blocks["human"].value == "Lives in Bergen"


async def test_rethink_rewrites_and_respects_limit(ctx: ToolContext) -> None:
    assert (
        await run(ctx, "memory_rethink", '{"label": "human", "new_memory": "Brad."}')
    ).startswith("Saved.")
    assert ctx.blocks["human"].value == "Brad."
    assert "limit" in await run(
        ctx, "memory_rethink", f'{{"label": "human", "new_memory": "{"z" * 61}"}}'
    )


async def test_unknown_label_lists_blocks(ctx: ToolContext) -> None:
    result = await run(ctx, "core_memory_append", '{"label": "pets", "content": "cat"}')
    assert "no memory block labelled 'pets'" in result and "human, persona" in result


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"label": "human"}', "missing required argument(s) ['content']"),
        ('{"label": 5, "content": "x"}', "label must be a string"),
    ],
)
async def test_bad_arguments_become_hints(ctx: ToolContext, arguments: str, expected: str) -> None:
    result = await run(ctx, "core_memory_append", arguments)
    assert result.startswith("Error:") and expected in result


@pytest.mark.parametrize(
    "arguments",
    [
        '{"label": "human", "content": "Name: Brad", "request_heartbeat": true}',
        '{"label": "human", "content": "Name: Brad", "inner_thoughts": "save it", "mood": 3}',
        '"{\\"label\\": \\"human\\", \\"content\\": \\"Name: Brad\\"}"',  # double-encoded
    ],
)
async def test_tolerated_arguments_still_save(ctx: ToolContext, arguments: str) -> None:
    result = await run(ctx, "core_memory_append", arguments)
    assert result.startswith("Saved."), result
    assert ctx.blocks["human"].value == "Name: Brad"


async def test_a_call_that_names_no_tool_says_how_to_write_one(ctx: ToolContext) -> None:
    result = await run(ctx, "", '{"label": "human"}')
    assert result.startswith("Error:") and '"arguments"' in result


async def test_unknown_tool_lists_tools(ctx: ToolContext) -> None:
    result = await run(ctx, "read_other_users_memory", "{}")
    assert "no tool named" in result and "conversation_search" in result


async def test_archival_insert_and_search(ctx: ToolContext) -> None:
    assert (
        await run(
            ctx,
            "archival_memory_insert",
            '{"content": "Brad\'s cat is called Miso", "tags": ["pets"]}',
        )
        == "Filed in archival memory."
    )
    found = await run(ctx, "archival_memory_search", '{"query": "what is the cat called"}')
    assert "Miso" in found and "pets" in found
    assert "No archival passages" in await run(ctx, "archival_memory_search", '{"query": "dog"}')
    assert "empty" in await run(ctx, "archival_memory_insert", '{"content": "  "}')
    assert "split it" in await run(ctx, "archival_memory_insert", f'{{"content": "{"a" * 5000}"}}')


async def test_conversation_search_dates_filter(
    ctx: ToolContext, storage: SQLiteStorage, clock: ManualClock
) -> None:
    start = clock.now()
    await storage.append_messages(
        ctx.agent_id,
        [
            NewMessage(Role.USER, "I went climbing", start),
            NewMessage(Role.ASSISTANT, "Climbing sounds fun", start + timedelta(days=10)),
            NewMessage(Role.USER, "More climbing today", start + timedelta(days=20)),
        ],
    )
    everything = await run(ctx, "conversation_search", '{"query": "climbing"}')
    assert everything.startswith("3 message(s)")
    day = (start + timedelta(days=10)).date().isoformat()
    one_day = await run(
        ctx,
        "conversation_search",
        f'{{"query": "climbing", "start_date": "{day}", "end_date": "{day}"}}',
    )
    assert one_day.startswith("1 message(s)") and "you: Climbing sounds fun" in one_day
    until = await run(
        ctx, "conversation_search", f'{{"query": "climbing", "end_date": "{day}", "limit": "5"}}'
    )
    assert until.startswith("2 message(s)") and "More climbing" not in until
    assert "brad: I went climbing" in until


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"query": "x", "start_date": "last week"}', "ISO date"),
        ('{"query": "x", "start_date": "2025-02-01", "end_date": "2025-01-01"}', "after end_date"),
        ('{"query": "x", "limit": 0}', "at least 1"),
        ('{"query": "x", "limit": "many"}', "integer"),
    ],
)
async def test_conversation_search_bad_input(
    ctx: ToolContext, arguments: str, expected: str
) -> None:
    assert expected in await run(ctx, "conversation_search", arguments)


async def test_read_only_block_cannot_be_edited(ctx: ToolContext) -> None:
    from dataclasses import replace  # noqa: PLC0415

    ctx.blocks["persona"] = replace(ctx.blocks["persona"], read_only=True)
    assert "read-only" in await run(
        ctx, "memory_rethink", '{"label": "persona", "new_memory": "x"}'
    )


async def test_archival_search_pages_through_the_results(ctx: ToolContext) -> None:
    for i in range(5):
        await run(ctx, "archival_memory_insert", f'{{"content": "note {i} about gardening"}}')
    pages = [
        await run(ctx, "archival_memory_search", f'{{"query": "gardening", "limit": 2, {p}}}')
        for p in ('"page": 0', '"page": 1', '"page": 2')
    ]
    assert pages[0].startswith(
        "Passages 1-2 found for 'gardening', most relevant first (for more, search again with "
        "page=1):"
    )
    assert pages[1].splitlines()[0].endswith("(for more, search again with page=2):")
    assert pages[1].splitlines()[1].startswith("3. ")
    assert pages[2].splitlines()[0] == "Passages 5-5 found for 'gardening', most relevant first:"
    notes = [line.split("] ", 1)[1] for page in pages for line in page.splitlines()[1:]]
    assert sorted(notes) == [f"note {i} about gardening" for i in range(5)]
    past_the_end = '{"query": "gardening", "limit": 2, "page": 3}'
    assert await run(ctx, "archival_memory_search", past_the_end) == (
        "No archival passages found for 'gardening' on page 3."
    )
    negative = await run(ctx, "archival_memory_search", '{"query": "x", "page": -1}')
    assert "page must be 0 or more" in negative
