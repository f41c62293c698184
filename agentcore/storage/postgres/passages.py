"""``PassageStore`` on PostgreSQL: archival memory, the facts an agent chose to keep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agentcore.clock import to_millis
from agentcore.records import NewPassage, Passage
from agentcore.search import engine
from agentcore.search.terms import stored_passage_terms
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Conn, Part, texts
from agentcore.storage.postgres.search import PassageIndex


class PassageRows(Part):
    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        passage = NewPassage(content, tuple(tags), now)
        [added] = await self._db.statement(lambda conn: insert_passages(conn, agent_id, [passage]))
        return added

    async def search_passages(
        self, agent_id: int, query: str, limit: int = 10, offset: int = 0, *, fuzzy: bool = True
    ) -> list[Passage]:
        index = PassageIndex(self._db, agent_id)
        return await engine.find_passages(index, query, limit, offset, fuzzy, self._meaning)

    async def all_passages(self, agent_id: int) -> list[Passage]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.PASSAGE_COLUMNS} FROM passages WHERE agent_id = $1 ORDER BY id",
                agent_id,
            )
        )
        return [rows.passage(r) for r in found]


async def insert_passages(
    conn: Conn,
    agent_id: int,
    passages: Sequence[NewPassage],
    *,
    file_id: int | None = None,
) -> list[int]:
    """Insert the passages in one statement; their ids, in order. A passage's terms are its
    text's and its tags' (``passage_terms``), and a document's name and page
    (``stored_passage_terms``); ``file_id``: the document they were read from."""
    if not passages:
        return []
    found = await conn.fetch(
        "INSERT INTO passages (agent_id, content, tags, terms, created_at, source, page, file_id)"
        " SELECT $1, p.content, p.tags, p.terms, p.created_at, p.source, p.page, $8 FROM "
        "unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::integer[]) "
        "WITH ORDINALITY AS p(content, tags, terms, created_at, source, page, n) "
        "ORDER BY p.n RETURNING id",
        agent_id,
        texts([p.content for p in passages]),
        texts([" ".join(p.tags) for p in passages]),
        [stored_passage_terms(p.content, p.tags, p.source, p.page) for p in passages],
        [to_millis(p.created_at) for p in passages],
        texts([p.source for p in passages]),
        [p.page for p in passages],
        file_id,
    )
    return sorted(r["id"] for r in found)
