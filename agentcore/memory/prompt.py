"""Compiling the context window, laid out for prompt caching.

What rarely changes comes first, in one system message that stays the same from request to
request: the instructions, core memory (as ``memory.prefix`` decides to show it) and the running
summary (the tool schemas travel in the API's own field, ahead of it all). Then the recent
messages, oldest first. What changes every turn comes after the person's latest message, in
one more system message: the memory metadata (time, counts, last seen, session), core-memory
blocks changed since the prefix's view was written, what automatic recall found for this turn
(``memory.recall``), and one-off notes such as memory pressure.
So each request repeats the previous one up to the newest messages, and providers' prompt
caches and local servers' KV caches reuse all of that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agentcore.memory.prefix import Changes, PrefixBlocks, ShownBlock, changes
from agentcore.messages import ImagePart, PromptMessage, Role
from agentcore.records import StoredMessage
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


TURN_CONTEXT_START = "<memory_metadata>"  # how a turn's context message begins

# The prompt's own structure. Weak models copy it into their replies; the person never sees it.
_TAG_NAMES = (
    "memory_blocks",
    "memory_metadata",
    "summary",
    "recalled_memory",
    "memory_updates",
    "description",
    "metadata",
    "value",
)
_PROMPT_TAGS = re.compile(rf"</?(?:{'|'.join(_TAG_NAMES)})>")
_TAG_TEXTS = tuple(f"<{slash}{name}>" for name in _TAG_NAMES for slash in ("", "/"))


def without_prompt_tags(text: str) -> str:
    return _PROMPT_TAGS.sub("", text).strip()


def streamed_without_prompt_tags(shown: str) -> str:
    """An answer's text while it is streamed: without the prompt's tags, and without a tail
    that may be the start of one (``"<recalled_mem"``), so what is shown only ever grows."""
    text = _PROMPT_TAGS.sub("", shown)
    start = text.rfind("<")
    if start != -1 and any(tag.startswith(text[start:]) for tag in _TAG_TEXTS):
        text = text[:start]
    return text.strip()


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
    zone_known: bool | None = None  # the person set their time zone; None: reminders are off


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


def render_block(block: ShownBlock) -> str:
    size = f"chars_current={len(block.value)}"
    if block.limit:
        size += f" chars_limit={block.limit}"
    return (
        f"<{block.label}>\n<description>{block.description}</description>\n"
        f"<metadata>{size} read_only={str(block.read_only).lower()}</metadata>\n"
        f"<value>\n{block.value}\n</value>\n</{block.label}>"
    )


def render_blocks(blocks: Iterable[ShownBlock]) -> str:
    return "<memory_blocks>\n" + "\n".join(map(render_block, blocks)) + "\n</memory_blocks>"


def render_changes(found: Changes) -> str:
    """Blocks that differ from what the prefix shows, with their current values."""
    lines = [
        "These core memory blocks changed after the memory blocks above were written. What "
        "they hold now is this (it replaces what is shown above):",
        *map(render_block, found.changed),
        *(f"The block {label!r} no longer exists." for label in found.removed),
    ]
    return "<memory_updates>\n" + "\n".join(lines) + "\n</memory_updates>"


def render_metadata(facts: TurnFacts, tz: ZoneInfo) -> str:
    lines = [f"- Current time: {format_time(facts.now, tz)}"]
    if facts.zone_known is not None:
        lines.append(
            f"- The person's time zone: {tz.key}"
            if facts.zone_known
            else f"- The person's time zone is not known; times are in {tz.key}, the bot's "
            "default (if they tell you where they are, call set_timezone)"
        )
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
    return f"{TURN_CONTEXT_START}\n" + "\n".join(lines) + "\n</memory_metadata>"


def render_summary(summary: str) -> str:
    return (
        "<summary>\nA summary of your earlier conversation with this person (the full "
        f"messages are still searchable):\n{summary}\n</summary>"
    )


@dataclass(frozen=True, slots=True)
class PromptParts:
    """Everything one request is compiled from."""

    instructions: str
    shown: PrefixBlocks  # core memory as the stable prefix shows it
    current: PrefixBlocks  # core memory as it is now
    summary: str
    facts: TurnFacts
    rows: Sequence[StoredMessage]  # the in-context messages, oldest first
    notes: Sequence[str]  # one-off notes for this call
    message_cap: int  # a person's messages are cut at this many characters
    tz: ZoneInfo
    images: Mapping[int, tuple[ImagePart, ...]] | None = None  # sent with rows, by row id
    recalled: str = ""  # automatic recall for this turn (changes every turn)


Layout = Callable[[PromptParts], tuple[PromptMessage, ...]]


def stable_system(parts: PromptParts) -> str:
    """The first system message: the same on every request until the view or summary changes."""
    sections = [parts.instructions.strip(), render_blocks(parts.shown)]
    if parts.summary:
        sections.append(render_summary(parts.summary))
    return "\n\n".join(sections)


def turn_context(parts: PromptParts) -> str:
    """What changes every turn: metadata, blocks changed since the prefix's view, automatic
    recall, notes."""
    sections = [render_metadata(parts.facts, parts.tz)]
    if found := changes(parts.shown, parts.current):
        sections.append(render_changes(found))
    if parts.recalled:
        sections.append(parts.recalled)
    sections += parts.notes
    return "\n\n".join(sections)


def prompt_messages(parts: PromptParts) -> tuple[PromptMessage, ...]:
    """The request's messages: the stable system message, the in-context messages, and the turn
    context right after the latest message a turn answers (the person's, or a system event such
    as a reminder coming due), before this turn's own tool steps, so a turn's later steps repeat
    its first request whole, unless a step changed the context."""
    history = history_messages(parts.rows, parts.message_cap, parts.images)
    answered = (Role.USER, Role.SYSTEM)
    latest = max((i for i, m in enumerate(history) if m.role in answered), default=-1)
    history.insert(latest + 1, PromptMessage(Role.SYSTEM, turn_context(parts)))
    return (PromptMessage(Role.SYSTEM, stable_system(parts)), *history)


def shorten(text: str | None, cap: int) -> str | None:
    """A person's over-long message as the model sees it (the stored row stays whole)."""
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + f"\n[… {len(text) - cap} more characters not shown]"


def history_messages(
    rows: Sequence[StoredMessage],
    cap: int,
    images: Mapping[int, tuple[ImagePart, ...]] | None = None,
) -> list[PromptMessage]:
    """The in-context rows as messages: a person's messages cut at ``cap`` characters, with the
    ``images`` sent with them (by row id), tool results without their call left out."""
    shown = images or {}
    return [
        PromptMessage(
            r.role,
            shorten(r.content, cap) if r.role is Role.USER else r.content,
            r.tool_calls,
            r.tool_call_id,
            shown.get(r.id, ()),
        )
        for r in well_formed(rows)
    ]


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
