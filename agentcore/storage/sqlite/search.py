"""The search index on SQLite: FTS5 over each row's analysed terms, scoped to one person.

Every statement is scoped to one agent, inside the index match (``fts.scoped``) or by an index
whose first column is the agent, so a search costs about the same in a database of a thousand
users as in a database of one. ``agentcore.search.engine`` runs the steps; each step here is one
statement, one round trip to the reader (``Database.fetch``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from agentcore.records import Passage, SearchHit, VectorKind
from agentcore.search.engine import Held, Indexed, Totals
from agentcore.search.fts import quote, scoped
from agentcore.search.plan import Uncommon
from agentcore.search.rank import DEFAULT_WEIGHTS, Candidate
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Database

# A message row as the search reads it.
_ROW = "m.id, m.role, m.content, m.created_at, m.seq, m.terms"


class _Index:
    """One agent's rows in one full-text table (``fts``, with its vocabulary table)."""

    def __init__(
        self, db: Database, agent_id: int, fts: str, vocab: str, totals: str, kind: VectorKind
    ) -> None:
        self._db = db
        self._agent_id = agent_id
        self._fts = fts
        self._vocab = vocab
        self._totals = totals  # columns of the agent's row, named docs and terms
        self._kind = kind  # what the rows' vectors stand for

    async def vectors(self, model_id: int) -> list[tuple[int, bytes]]:
        _, _, table, id_column = rows.VECTOR_TABLES[self._kind]
        found = await self._db.fetch(
            f"SELECT {id_column}, vector FROM {table} WHERE agent_id = ? AND model_id = ?",
            (self._agent_id, model_id),
        )
        return [(r[0], r[1]) for r in found]

    def _match(self, keys: Sequence[str]) -> str:
        return scoped("agent_id", self._agent_id, "terms", keys)

    def _count(self) -> str:
        """A subquery: how many rows of the index match its parameter."""
        return f"(SELECT count(*) FROM {self._fts} WHERE {self._fts} MATCH ?)"

    async def counts(self, keys: Sequence[str]) -> tuple[Totals, dict[str, int]]:
        counted = ", ".join(f"{self._count()} AS key{i}" for i in range(len(keys)))
        found = await self._db.fetch(
            f"SELECT {', '.join(filter(None, [self._totals, counted]))} FROM agents WHERE id = ?",
            [*(self._match([k]) for k in keys), self._agent_id],
        )
        if not found:
            return Totals(0), {}
        row = found[0]
        return (
            Totals(row["docs"], row["terms"]),
            {k: row[f"key{i}"] for i, k in enumerate(keys)},
        )

    async def holding(self, keys: Sequence[str], uncommon: Uncommon) -> Held:
        # Rows tagged -1: the totals; -2: the cap; i >= 0: an id of a row holding key i. Each
        # key's scan stops at the cap: a common key's rows are not all read (it is counted).
        each = (
            f"SELECT * FROM (SELECT {{i}}, rowid, NULL FROM {self._fts} "
            f"WHERE {self._fts} MATCH ? LIMIT coalesce((SELECT cap FROM c), 0))"
        )
        found = await self._db.fetch(
            f"WITH a AS (SELECT {self._totals} FROM agents WHERE id = ?), "
            "c AS (SELECT CAST(min(max(? * docs, ?), ?) AS INTEGER) + 1 AS cap FROM a) "
            "SELECT -1, docs, terms FROM a UNION ALL SELECT -2, cap, NULL FROM c"
            + "".join(f" UNION ALL {each.format(i=i)}" for i in range(len(keys))),
            [self._agent_id, uncommon.share, uncommon.few, uncommon.most]
            + [self._match([k]) for k in keys],
        )
        if not found:
            return Held(Totals(0), 0, {})
        (_, docs, terms), (_, cap, _) = found[0], found[1]
        ids: dict[str, list[int]] = {}
        for i, row_id, _ in found[2:]:
            ids.setdefault(keys[i], []).append(row_id)
        return Held(Totals(docs, terms), cap, ids)

    async def unknown(self, terms: Sequence[str]) -> list[str]:
        probe = f"EXISTS (SELECT 1 FROM {self._fts} WHERE {self._fts} MATCH ?)"
        probes = ", ".join(f"{probe} AS known{i}" for i in range(len(terms)))
        [row] = await self._db.fetch(f"SELECT {probes}", [f"terms : {quote(t)}" for t in terms])
        return [t for i, t in enumerate(terms) if not row[f"known{i}"]]

    async def near(self, head: str, shortest: int, longest: int) -> list[str]:
        found = await self._db.fetch(
            f"SELECT term FROM {self._vocab} WHERE term >= ? AND term < ? "
            "AND length(term) BETWEEN ? AND ?",
            (head, head + "\U0010ffff", shortest, longest),
        )
        return [r["term"] for r in found]

    async def matches(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        each = f"SELECT ? AS key, rowid FROM {self._fts} WHERE {self._fts} MATCH ?"
        params: list[Any] = []
        for key in keys:
            params += [key, self._match([key])]
        found = await self._db.fetch(" UNION ALL ".join([each] * len(keys)), params)
        return [(r["key"], r["rowid"]) for r in found]

    async def newest(self, key: str, limit: int) -> list[int]:
        found = await self._db.fetch(
            f"SELECT rowid FROM {self._fts} WHERE {self._fts} MATCH ? ORDER BY rowid DESC LIMIT ?",
            (self._match([key]), limit),
        )
        return [r["rowid"] for r in found]


class MessageIndex(_Index):
    def __init__(self, db: Database, agent_id: int) -> None:
        totals = "search_docs AS docs, search_terms AS terms"
        super().__init__(db, agent_id, "messages_fts", "messages_vocab", totals, VectorKind.MESSAGE)

    async def around(
        self, ids: Sequence[int], anchors: Sequence[int], lo: int, hi: int
    ) -> list[Indexed[SearchHit]]:
        if not ids:
            return []
        reach = DEFAULT_WEIGHTS.reach
        offsets = ", ".join(f"({d})" for d in range(-reach, reach + 1) if d)
        id_marks = ", ".join("?" * len(ids))
        anchor_marks = ", ".join("?" * len(anchors))
        found = await self._db.fetch(
            f"SELECT {_ROW} FROM messages m WHERE m.id IN ({id_marks}) "
            "AND m.created_at BETWEEN ? AND ? "
            f"UNION SELECT {_ROW} FROM messages m WHERE m.agent_id = ? AND m.seq IN "
            f"(SELECT a.seq + d.column1 FROM messages a, (VALUES {offsets}) AS d "
            f"WHERE a.id IN ({anchor_marks})) AND m.created_at BETWEEN ? AND ?",
            [*ids, lo, hi, self._agent_id, *anchors, lo, hi],
        )
        return [_message(r) for r in found]

    async def written_between(self, lo: int, hi: int, limit: int) -> list[Indexed[SearchHit]]:
        found = await self._db.fetch(
            f"SELECT {_ROW} FROM messages m WHERE m.agent_id = ? AND m.terms IS NOT NULL "
            "AND m.created_at BETWEEN ? AND ? ORDER BY m.created_at LIMIT ?",
            (self._agent_id, lo, hi, limit),
        )
        return [_message(r) for r in found]

    async def latest_between(self, lo: int, hi: int, limit: int) -> list[SearchHit]:
        found = await self._db.fetch(
            f"SELECT {rows.HIT_COLUMNS} FROM messages WHERE agent_id = ? "
            "AND terms IS NOT NULL AND created_at BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
            (self._agent_id, lo, hi, limit),
        )
        return [rows.hit(r) for r in found]


class PassageIndex(_Index):
    def __init__(self, db: Database, agent_id: int) -> None:
        totals = "passage_count AS docs, NULL AS terms"
        super().__init__(db, agent_id, "passages_fts", "passages_vocab", totals, VectorKind.PASSAGE)

    async def rows(self, ids: Sequence[int]) -> list[Indexed[Passage]]:
        marks = ", ".join("?" * len(ids))
        found = await self._db.fetch(
            f"SELECT {rows.PASSAGE_COLUMNS}, terms FROM passages WHERE id IN ({marks})", ids
        )
        return [
            Indexed(Candidate(r["id"], r["id"], r["created_at"], r["terms"]), rows.passage(r))
            for r in found
        ]


def _message(r: sqlite3.Row) -> Indexed[SearchHit]:
    return Indexed(Candidate(r["id"], r["seq"], r["created_at"], r["terms"]), rows.hit(r))
