"""``PassageStore`` on SQLite: archival memory, the facts an agent chose to keep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import NewPassage, Passage
from agentcore.search import engine
from agentcore.search.terms import stored_passage_terms
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.search import PassageIndex

_INSERT = (
    "INSERT INTO passages (agent_id, content, tags, terms, created_at, source, page, file_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class PassageRows(Part):
    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        params = _params(agent_id, NewPassage(content, tuple(tags), now))
        [added] = await self._db.execute(f"{_INSERT} RETURNING id", params)
        return int(added["id"])

    async def search_passages(
        self, agent_id: int, query: str, limit: int = 10, offset: int = 0, *, fuzzy: bool = True
    ) -> list[Passage]:
        index = PassageIndex(self._db, agent_id)
        return await engine.find_passages(index, query, limit, offset, fuzzy, self._meaning)

    async def all_passages(self, agent_id: int) -> list[Passage]:
        found = await self._db.fetch(
            f"SELECT {rows.PASSAGE_COLUMNS} FROM passages WHERE agent_id = ? ORDER BY id",
            (agent_id,),
        )
        return [rows.passage(r) for r in found]


async def insert_passages(
    conn: aiosqlite.Connection,
    agent_id: int,
    passages: Sequence[NewPassage],
    *,
    file_id: int | None = None,
) -> None:
    """Passages of an agent; ``file_id``: the document they were read from."""
    await conn.executemany(_INSERT, [_params(agent_id, p, file_id) for p in passages])


def _params(
    agent_id: int, p: NewPassage, file_id: int | None = None
) -> tuple[int, str, str, str, int, str, int | None, int | None]:
    """A passage's row; its terms are its text's and its tags' (``passage_terms``), and a
    document's name and page (``stored_passage_terms``)."""
    terms = stored_passage_terms(p.content, p.tags, p.source, p.page)
    return (
        agent_id,
        p.content,
        " ".join(p.tags),
        terms,
        to_millis(p.created_at),
        p.source,
        p.page,
        file_id,
    )
