"""``PassageStore`` on SQLite: archival memory, the facts an agent chose to keep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import NewPassage, Passage
from agentcore.search import engine
from agentcore.search.terms import passage_terms
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.search import PassageIndex

_INSERT = "INSERT INTO passages (agent_id, content, tags, terms, created_at) VALUES (?, ?, ?, ?, ?)"


class PassageRows(Part):
    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        params = _params(agent_id, NewPassage(content, tuple(tags), now))
        [added] = await self._db.execute(f"{_INSERT} RETURNING id", params)
        return int(added["id"])

    async def search_passages(self, agent_id: int, query: str, limit: int = 10) -> list[Passage]:
        return await engine.find_passages(PassageIndex(self._db, agent_id), query, limit)

    async def all_passages(self, agent_id: int) -> list[Passage]:
        found = await self._db.fetch(
            f"SELECT {rows.PASSAGE_COLUMNS} FROM passages WHERE agent_id = ? ORDER BY id",
            (agent_id,),
        )
        return [rows.passage(r) for r in found]


async def insert_passages(
    conn: aiosqlite.Connection, agent_id: int, passages: Sequence[NewPassage]
) -> None:
    await conn.executemany(_INSERT, [_params(agent_id, p) for p in passages])


def _params(agent_id: int, p: NewPassage) -> tuple[int, str, str, str, int]:
    """A passage's row; its terms are its text's and its tags' (``passage_terms``)."""
    return (
        agent_id,
        p.content,
        " ".join(p.tags),
        passage_terms(p.content, p.tags),
        to_millis(p.created_at),
    )
