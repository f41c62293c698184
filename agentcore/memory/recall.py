"""Automatic recall: memory that does not wait for the model to search.

Once per turn the runtime searches this person's stored messages and archival notes for what
their new message is about (the engine behind ``conversation_search`` and
``archival_memory_search``), drops what is already in the context window, and shows the best of
the rest, dated, under one heading, within a token budget. A model that never calls a tool can
still answer "what did I tell you about X" weeks and a ``/reset`` later.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import zip_longest
from typing import Protocol
from zoneinfo import ZoneInfo

from agentcore.messages import Role
from agentcore.records import Passage, SearchHit
from agentcore.storage.protocols import MessageStore, PassageStore

RECALL_HEADING = (
    "Automatic recall: older messages and archival notes that matched the person's latest "
    "message, found by searching your memory (they are not otherwise in view). Each is dated; "
    "use them if they help, ignore them if not, and use conversation_search for more."
)
CANDIDATES = 10  # results taken from each search, besides those already in view
SNIPPET_CHARS = 300  # a recalled message or note is shown up to this long
QUERY_CHARS = 1000  # the start of a long message says what it is about
_CHARS_PER_TOKEN = 4  # the estimator's ratio: a budget in tokens, counted locally


@dataclass(frozen=True, slots=True)
class Recalled:
    text: str  # the system message to show; "" when nothing out of view matched
    message_ids: tuple[int, ...] = ()
    passage_ids: tuple[int, ...] = ()
    tokens: int = 0


NOTHING = Recalled("")


class RecallStore(MessageStore, PassageStore, Protocol):
    """The slice of storage automatic recall reads."""


@dataclass(frozen=True, slots=True)
class Found:
    """What the searches returned, best first, before what is in view is dropped."""

    hits: list[SearchHit]
    passages: list[Passage]


NOT_FOUND = Found([], [])


async def search(
    store: RecallStore,
    agent_id: int,
    query: str,
    *,
    in_view: int,
    search_messages: bool,
    search_passages: bool,
) -> Found:
    """The searches for ``query``. ``in_view``: how many messages may be in the context window
    (as many more hits are fetched); ``search_messages`` / ``search_passages``: False when
    nothing could be found there (every message is in view, or there are no notes)."""
    query = query.strip()[:QUERY_CHARS]
    if not query or not (search_messages or search_passages):
        return NOT_FOUND
    limit = min(CANDIDATES + in_view, 100)
    # Every turn pays for it, so no typo corrections (the costliest step): a misspelt word's
    # other words and prefixes still match, and conversation_search still corrects.
    hits, passages = await asyncio.gather(
        _hits(store, agent_id, query, limit if search_messages else 0),
        _notes(store, agent_id, query, CANDIDATES if search_passages else 0),
    )
    return Found(hits, passages)


def shown(
    found: Found, in_view: Collection[int], budget: int, tz: ZoneInfo, person: str
) -> Recalled:
    """What to show of ``found``: the best messages not in view, and notes, within ``budget``."""
    if budget <= 0:
        return NOTHING
    out_of_view = [h for h in found.hits if h.id not in in_view][:CANDIDATES]
    return select(out_of_view, found.passages, budget, tz, person)


async def recall(
    store: RecallStore,
    agent_id: int,
    query: str,
    *,
    in_view: Collection[int],
    search_messages: bool,
    search_passages: bool,
    budget: int,
    tz: ZoneInfo,
    person: str,
) -> Recalled:
    """Search and select in one go (``in_view``: ids of the messages in the context window)."""
    if budget <= 0:
        return NOTHING
    found = await search(
        store,
        agent_id,
        query,
        in_view=len(in_view),
        search_messages=search_messages,
        search_passages=search_passages,
    )
    return shown(found, in_view, budget, tz, person)


async def _hits(store: RecallStore, agent_id: int, query: str, limit: int) -> list[SearchHit]:
    if not limit:
        return []
    return await store.search_messages(agent_id, query, limit=limit, fuzzy=False)


async def _notes(store: RecallStore, agent_id: int, query: str, limit: int) -> list[Passage]:
    if not limit:
        return []
    return await store.search_passages(agent_id, query, limit, fuzzy=False)


def select(
    hits: Sequence[SearchHit],
    passages: Sequence[Passage],
    budget: int,
    tz: ZoneInfo,
    person: str,
) -> Recalled:
    """The best of ``hits`` and ``passages`` (each best first; taken in turns, a note first)
    that fit in ``budget`` tokens with the heading, shown oldest first."""
    used = tokens(RECALL_HEADING) + 4
    chosen: list[tuple[datetime, str, SearchHit | Passage]] = []
    for item in (i for pair in zip_longest(passages, hits) for i in pair if i is not None):
        line = _line(item, tz, person)
        cost = tokens(line)
        if used + cost > budget:
            continue  # a shorter one further down may still fit
        used += cost
        chosen.append((item.created_at, line, item))
    if not chosen:
        return NOTHING
    chosen.sort(key=lambda c: c[0])
    body = "\n".join(line for _, line, _ in chosen)
    return Recalled(
        text=f"<recalled_memory>\n{RECALL_HEADING}\n{body}\n</recalled_memory>",
        message_ids=tuple(i.id for _, _, i in chosen if isinstance(i, SearchHit)),
        passage_ids=tuple(i.id for _, _, i in chosen if isinstance(i, Passage)),
        tokens=used,
    )


def tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def _line(item: SearchHit | Passage, tz: ZoneInfo, person: str) -> str:
    local = item.created_at.astimezone(tz)
    if isinstance(item, Passage):
        return f"- [{local:%Y-%m-%d}] archival note: {snippet(item.content)}"
    speaker = person if item.role is Role.USER else "you"
    return f"- [{local:%Y-%m-%d %H:%M}] {speaker}: {snippet(item.content)}"
