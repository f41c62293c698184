"""Archival memory tools: long-term notes the agent files and searches."""

from __future__ import annotations

from agentcore.tools.base import Tool, ToolContext, ToolError, schema
from agentcore.tools.recall import clamp_limit

MAX_PASSAGE_CHARS = 4000


async def archival_memory_insert(
    ctx: ToolContext, content: str, tags: list[str] | None = None
) -> str:
    if not content.strip():
        raise ToolError("content is empty; nothing to file")
    if len(content) > MAX_PASSAGE_CHARS:
        raise ToolError(
            f"content is {len(content)} characters; split it into passages of at most "
            f"{MAX_PASSAGE_CHARS}"
        )
    clean_tags = [t.strip() for t in tags or [] if t.strip()]
    await ctx.storage.add_passage(ctx.agent_id, content.strip(), clean_tags, ctx.clock.now())
    return "Filed in archival memory."


async def archival_memory_search(ctx: ToolContext, query: str, limit: int | None = None) -> str:
    passages = await ctx.storage.search_passages(ctx.agent_id, query, clamp_limit(limit, ctx))
    if not passages:
        return f"No archival passages found for {query!r}."
    lines = [f"{len(passages)} passage(s) found for {query!r}, most relevant first:"]
    for i, p in enumerate(passages, 1):
        stamp = p.created_at.astimezone(ctx.tz).strftime("%Y-%m-%d")
        tags = f" [tags: {', '.join(p.tags)}]" if p.tags else ""
        lines.append(f"{i}. [{stamp}]{tags} {p.content}")
    return "\n".join(lines)


TOOLS = (
    Tool(
        "archival_memory_insert",
        "File a note in archival memory for the long term (facts, events, details too long "
        "for core memory). Write it so it makes sense on its own later.",
        schema(
            ["content"],
            content={"type": "string", "description": "The note."},
            tags={
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Optional keywords.",
            },
        ),
        archival_memory_insert,
    ),
    Tool(
        "archival_memory_search",
        "Search the notes you filed in archival memory.",
        schema(
            ["query"],
            query={"type": "string", "description": "Words to look for."},
            limit={"type": ["integer", "null"], "description": "Maximum results (default 10)."},
        ),
        archival_memory_search,
    ),
)
