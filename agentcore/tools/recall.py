"""``conversation_search``: find past messages in recall memory, optionally within dates."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from agentcore.messages import Role
from agentcore.records import SearchHit
from agentcore.tools.base import Tool, ToolContext, ToolError, schema

_SNIPPET = 400  # characters of each hit shown to the model


def parse_bound(value: str | None, name: str, ctx: ToolContext, *, end: bool) -> datetime | None:
    """An ISO date or datetime, inclusive: an end date covers that whole day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) <= 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, ctx.tz)
            return moment + timedelta(days=1, milliseconds=-1) if end else moment
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ToolError(f"{name} must be an ISO date like 2025-01-31, got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ctx.tz)


def format_hits(hits: list[SearchHit], ctx: ToolContext, what: str) -> str:
    if not hits:
        return f"No messages found {what}."
    lines = [f"{len(hits)} message(s) found {what}, most relevant first:"]
    for i, hit in enumerate(hits, 1):
        stamp = hit.created_at.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M")
        speaker = ctx.person if hit.role is Role.USER else "you"
        text = hit.content if len(hit.content) <= _SNIPPET else hit.content[:_SNIPPET] + "…"
        lines.append(f"{i}. [{stamp}] {speaker}: {text}")
    return "\n".join(lines)


def clamp_limit(limit: int | None, ctx: ToolContext) -> int:
    if limit is None:
        return ctx.search_limit
    if limit < 1:
        raise ToolError("limit must be at least 1")
    return min(limit, 50)


async def conversation_search(
    ctx: ToolContext,
    query: str,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int | None = None,
) -> str:
    start = parse_bound(start_date, "start_date", ctx, end=False)
    end = parse_bound(end_date, "end_date", ctx, end=True)
    if start and end and start > end:
        raise ToolError("start_date is after end_date")
    hits = await ctx.storage.search_messages(
        ctx.agent_id, query, start=start, end=end, limit=clamp_limit(limit, ctx)
    )
    window = ""
    if start or end:
        window = f" between {start_date or 'the beginning'} and {end_date or 'now'}"
    return format_hits(hits, ctx, f"for {query!r}{window}")


TOOLS = (
    Tool(
        "conversation_search",
        "Search your whole past conversation with this person (recall memory), including "
        "messages no longer in view. Optionally restrict to dates (ISO, inclusive).",
        schema(
            ["query"],
            query={"type": "string", "description": "Words to look for."},
            start_date={
                "type": ["string", "null"],
                "description": "Earliest date to include, e.g. 2025-01-31.",
            },
            end_date={
                "type": ["string", "null"],
                "description": "Latest date to include, e.g. 2025-02-28.",
            },
            limit={"type": ["integer", "null"], "description": "Maximum results (default 10)."},
        ),
        conversation_search,
    ),
)
