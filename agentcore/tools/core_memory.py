"""Core memory tools: the agent edits its always-visible blocks (Letta's names and arguments)."""

from __future__ import annotations

from agentcore.memory import blocks as rules
from agentcore.records import Actor
from agentcore.tools.base import Tool, ToolContext, ToolError, schema

_LABEL = {"type": "string", "description": "The block to edit, e.g. 'human' or 'persona'."}


async def _edit(ctx: ToolContext, label: str, new_value_of: rules.EditFunction) -> str:
    try:
        block = rules.find_block(ctx.blocks, label)
        new_value = new_value_of(block)
    except rules.BlockEditError as exc:
        raise ToolError(str(exc)) from exc
    saved = await ctx.storage.save_block(
        ctx.agent_id, label, new_value, Actor.AGENT, "agent", ctx.clock.now()
    )
    ctx.blocks[label] = saved
    return f"Saved. The {label!r} block is now {len(saved.value)}/{saved.limit} characters."


async def core_memory_append(ctx: ToolContext, label: str, content: str) -> str:
    return await _edit(ctx, label, lambda block: rules.appended(block, content))


async def core_memory_replace(
    ctx: ToolContext, label: str, old_content: str, new_content: str
) -> str:
    return await _edit(ctx, label, lambda block: rules.replaced(block, old_content, new_content))


async def memory_rethink(ctx: ToolContext, label: str, new_memory: str) -> str:
    return await _edit(ctx, label, lambda block: rules.rethought(block, new_memory))


TOOLS = (
    Tool(
        "core_memory_append",
        "Append text to a core memory block (it is always in your prompt). Use it to remember "
        "lasting facts about the person or yourself.",
        schema(
            ["label", "content"],
            label=_LABEL,
            content={"type": "string", "description": "Text to add, on a new line."},
        ),
        core_memory_append,
    ),
    Tool(
        "core_memory_replace",
        "Replace exact text in a core memory block, e.g. to correct an outdated fact. Use an "
        "empty new_content to delete text.",
        schema(
            ["label", "old_content", "new_content"],
            label=_LABEL,
            old_content={"type": "string", "description": "Exact text currently in the block."},
            new_content={"type": "string", "description": "Text to put in its place."},
        ),
        core_memory_replace,
    ),
    Tool(
        "memory_rethink",
        "Rewrite a whole core memory block, e.g. to reorganise or condense it when it is "
        "nearly full.",
        schema(
            ["label", "new_memory"],
            label=_LABEL,
            new_memory={"type": "string", "description": "The block's complete new text."},
        ),
        memory_rethink,
    ),
)
