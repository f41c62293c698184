"""Formatting command output as short Markdown (adapters render it per platform)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from agentcore.media.documents import unit_of
from agentcore.messages import Role
from agentcore.records import Block, BlockVersion, DocState, SearchHit, StoredFile

_SNIPPET = 300


def stamp(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else "never"


def blocks(items: Sequence[Block]) -> str:
    parts = []
    for block in items:
        flag = ", read-only" if block.read_only else ""
        value = block.value.strip() or "(empty)"
        parts.append(f"**{block.label}** ({len(block.value)}/{block.limit} chars{flag})\n{value}")
    return "\n\n".join(parts)


def hits(items: Sequence[SearchHit], tz: ZoneInfo, person: str = "you") -> str:
    lines = []
    for hit in items:
        speaker = person if hit.role is Role.USER else "bot"
        text = " ".join(hit.content.split())
        if len(text) > _SNIPPET:
            text = text[:_SNIPPET] + "…"
        lines.append(f"[{stamp(hit.created_at, tz)}] {speaker}: {text}")
    return "\n".join(lines)


def diff(old: str | None, new: str) -> str:
    """Changed lines only, ``-`` removed and ``+`` added."""
    changes = [
        line
        for line in difflib.unified_diff(
            (old or "").splitlines(), new.splitlines(), lineterm="", n=0
        )
        if not line.startswith(("---", "+++", "@@"))
    ]
    return "\n".join(changes) or "(no change)"


def history(versions: Sequence[BlockVersion], tz: ZoneInfo) -> str:
    parts = []
    for v in versions:
        who = v.actor.value + (
            f" {v.actor_name}" if v.actor_name and v.actor.value != v.actor_name else ""
        )
        parts.append(
            f"**v{v.version}** {who}, {stamp(v.created_at, tz)}\n{diff(v.old_value, v.new_value)}"
        )
    return "\n\n".join(parts)


def document(number: int, file: StoredFile, tz: ZoneInfo) -> str:
    """One line of /documents: its number, name, how far it is read, and when it came."""
    count = f"{file.pages} {unit_of(file.filename)}{'s' if file.pages != 1 else ''}"
    status = {
        DocState.READY: f"{count}, read",
        DocState.READING: f"reading: {file.pages_read} of {count}",
        DocState.FAILED: f"not read ({file.note or 'it could not be read'})",
        DocState.NONE: "not read",
    }[file.state]
    return f"{number}. {file.filename} — {status}; sent {stamp(file.created_at, tz)}"
