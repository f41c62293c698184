"""Archival memory tools: long-term notes the agent files and searches."""

from __future__ import annotations

from agentcore.media.documents import unit_of
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


async def archival_memory_search(
    ctx: ToolContext, query: str, limit: int | None = None, page: int | None = None
) -> str:
    """Letta's search, with MemGPT's paging: ``page`` 0 is the best ``limit`` passages,
    page 1 the next ones, and so on (a long document is read a page of results at a time)."""
    size = clamp_limit(limit, ctx)
    page = page or 0
    if page < 0:
        raise ToolError("page must be 0 or more")
    found = await ctx.storage.search_passages(ctx.agent_id, query, size + 1, page * size)
    passages, more = found[:size], len(found) > size
    if not passages:
        where = f" on page {page}" if page else ""
        return f"No archival passages found for {query!r}{where}."
    first = page * size + 1
    lines = [
        f"Passages {first}-{first + len(passages) - 1} found for {query!r}, most relevant first"
        + (f" (for more, search again with page={page + 1}):" if more else ":")
    ]
    for i, p in enumerate(passages, first):
        stamp = p.created_at.astimezone(ctx.tz).strftime("%Y-%m-%d")
        source = f" [from {passage_place(p.source, p.page)}]" if p.source else ""
        tags = f" [tags: {', '.join(p.tags)}]" if p.tags else ""
        lines.append(f"{i}. [{stamp}]{source}{tags} {p.content}")
    return "\n".join(lines)


def passage_place(source: str, page: int | None) -> str:
    """Where in a document a passage is: "report.pdf, page 200" (parts for formats without
    pages)."""
    if page is None:
        return source
    return f"{source}, {unit_of(source)} {page}"


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
        "Search archival memory: the notes you filed, and the documents the person sent "
        "(each passage names its document and page). Page through more results with page.",
        schema(
            ["query"],
            query={"type": "string", "description": "Words to look for."},
            limit={"type": ["integer", "null"], "description": "Maximum results (default 10)."},
            page={
                "type": ["integer", "null"],
                "description": "Which page of results: 0 (default) the best, 1 the next, ...",
            },
        ),
        archival_memory_search,
    ),
)
