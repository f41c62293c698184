"""Compiling the context window: system instructions, core memory, memory metadata, the running
summary, then the recent messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agentcore.messages import PromptMessage, Role
from agentcore.records import Block, SharedBlock, StoredMessage
from agentcore.types import ChatKind

GROUP_NOTE = (
    "This message was sent in a group chat that other people can read. Answer only this "
    "person, and do not reveal anything from your memory of them, or anything they told you "
    "in private, that they would not want said in front of others."
)
PRESSURE_NOTE = (
    "Memory pressure: this conversation is using {percent}% of your context window. Older "
    "messages will soon be folded into a summary. Save anything important about this person "
    "to core memory (core_memory_append / core_memory_replace) or archival memory now."
)


@dataclass(frozen=True, slots=True)
class TurnFacts:
    """What the agent is told about this moment (the memory metadata)."""

    now: datetime
    previous_user_at: datetime | None
    session: int
    new_session: bool
    message_count: int
    passage_count: int
    chat: ChatKind
    platform: str
    display_name: str


def format_time(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z (%A)")


def humanize(delta: timedelta) -> str:
    """How long ago, e.g. ``3 hours ago``."""
    span = _span(delta)
    return f"{span} ago" if span else "just now"


def humanize_until(delta: timedelta) -> str:
    """How long until, e.g. ``in 3 hours``."""
    span = _span(delta)
    return f"in {span}" if span else "in a moment"


def _span(delta: timedelta) -> str:
    """The largest whole unit of ``delta`` (``3 hours``), or "" under a minute."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return ""


def render_block(
    label: str, description: str, value: str, limit: int | None, read_only: bool
) -> str:
    size = (
        f"chars_current={len(value)} chars_limit={limit}"
        if limit
        else f"chars_current={len(value)}"
    )
    return (
        f"<{label}>\n<description>{description}</description>\n"
        f"<metadata>{size} read_only={str(read_only).lower()}</metadata>\n"
        f"<value>\n{value}\n</value>\n</{label}>"
    )


def render_blocks(blocks: Iterable[Block], shared: Iterable[SharedBlock]) -> str:
    parts = [render_block(b.label, b.description, b.value, b.limit, b.read_only) for b in blocks]
    parts += [
        render_block(
            s.label,
            "Set by the bot's operators for everyone; you cannot edit it.",
            s.value,
            None,
            True,
        )
        for s in shared
    ]
    return "<memory_blocks>\n" + "\n".join(parts) + "\n</memory_blocks>"


def render_metadata(facts: TurnFacts, tz: ZoneInfo) -> str:
    lines = [f"- Current time: {format_time(facts.now, tz)}"]
    if facts.previous_user_at is None:
        lines.append("- This is the first message this person has ever sent you.")
    else:
        ago = humanize(facts.now - facts.previous_user_at)
        lines.append(f"- This person last wrote: {format_time(facts.previous_user_at, tz)} ({ago})")
    lines.append(
        f"- Recall memory: {facts.message_count} messages stored (search with conversation_search)"
    )
    lines.append(
        f"- Archival memory: {facts.passage_count} passages (search with archival_memory_search)"
    )
    session = f"- Session: {facts.session}"
    if facts.new_session and facts.previous_user_at is not None:
        session += ". A new session has started after a gap; greet them accordingly."
    lines.append(session)
    name = f', display name "{facts.display_name}"' if facts.display_name else ""
    lines.append(f"- Speaking with: a {facts.platform} user{name}, in a {facts.chat.value} chat")
    if facts.chat is ChatKind.GROUP:
        lines.append(f"- {GROUP_NOTE}")
    return "<memory_metadata>\n" + "\n".join(lines) + "\n</memory_metadata>"


def system_prompt(
    instructions: str,
    blocks: Sequence[Block],
    shared: Sequence[SharedBlock],
    facts: TurnFacts,
    summary: str,
    tz: ZoneInfo,
) -> str:
    sections = [instructions.strip(), render_blocks(blocks, shared), render_metadata(facts, tz)]
    if summary:
        sections.append(
            "<summary>\nA summary of your earlier conversation with this person (the full "
            f"messages are still searchable):\n{summary}\n</summary>"
        )
    return "\n\n".join(sections)


def shorten(text: str | None, cap: int) -> str | None:
    """A person's over-long message as the model sees it (the stored row stays whole)."""
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + f"\n[… {len(text) - cap} more characters not shown]"


def prompt_messages(
    system: str, rows: Sequence[StoredMessage], notes: Sequence[str], cap: int
) -> tuple[PromptMessage, ...]:
    """The request's messages: system prompt, in-context rows (a person's messages cut at
    ``cap`` characters), then any one-off system notes."""
    history = [
        PromptMessage(
            r.role,
            shorten(r.content, cap) if r.role is Role.USER else r.content,
            r.tool_calls,
            r.tool_call_id,
        )
        for r in well_formed(rows)
    ]
    return (
        PromptMessage(Role.SYSTEM, system),
        *history,
        *(PromptMessage(Role.SYSTEM, note) for note in notes),
    )


def well_formed(rows: Sequence[StoredMessage]) -> list[StoredMessage]:
    """Drop tool results whose call is not in the window: providers reject orphans."""
    open_calls: set[str] = set()
    kept = []
    for row in rows:
        if row.role is Role.TOOL and row.tool_call_id not in open_calls:
            continue
        open_calls |= {c.id for c in row.tool_calls}
        kept.append(row)
    return kept
