"""The search index on PostgreSQL: a tsvector of each row's analysed terms, scoped to one person.

The stored terms become a ``tsvector`` as they are (``array_to_tsvector``: no parsing, no
stemming, so PostgreSQL matches exactly the terms ``agentcore.search.analysis`` made, as FTS5
does on SQLite), and a GIN index over (agent, tsvector) (``btree_gin``) finds one person's rows
holding a term without touching anyone else's. A key is a term (``'paint'``) or a prefix
(``'paint':*``). The per-person totals the ranker needs are kept on the agent's row by triggers,
and every term anyone wrote is in a vocabulary table for spelling corrections.
``agentcore.search.engine`` runs the steps; each step here is one statement.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.records import Passage, SearchHit, VectorKind
from agentcore.search.engine import Held, Indexed, Totals
from agentcore.search.plan import Uncommon
from agentcore.search.rank import DEFAULT_WEIGHTS, Candidate
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Database, Pinned

# A message row as the search reads it.
_ROW = "m.id, m.role, m.content, m.created_at, m.seq, m.terms"


def lexeme(owner: int, term: str) -> str:
    """A tsquery literal matching exactly ``owner``'s ``term``: every character is data."""
    owned = f"{owner}_{term}"
    return "'" + owned.replace("\\", "\\\\").replace("'", "''") + "'"


def key_query(owner: int, key: str) -> str:
    """The tsquery text of a key: ``'42_paint'`` for a term, ``'42_paint':*`` for ``paint*``."""
    if key.endswith("*") and len(key) > 1:
        return lexeme(owner, key[:-1]) + ":*"
    return lexeme(owner, key)


def any_key(owner: int, keys: Sequence[str]) -> str:
    """A tsquery matching ``owner``'s rows that hold any of ``keys`` (terms or prefixes)."""
    return " | ".join(key_query(owner, k) for k in keys)


class _Index:
    """One agent's rows of one kind: their table, with its vocabulary table and its vectors."""

    def __init__(self, db: Database | Pinned, agent_id: int, kind: VectorKind, totals: str) -> None:
        self._db = db
        self._agent_id = agent_id
        # The rows' table, the partial index's condition (to use it), and their vectors' table.
        self._table, self._searchable, self._vectors, self._vector_id = rows.VECTOR_TABLES[kind]
        self._totals = totals  # columns of the agent's row, named docs and terms

    async def vectors(self, model_id: int) -> list[tuple[int, bytes]]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {self._vector_id}, vector FROM {self._vectors} "
                "WHERE agent_id = $1 AND model_id = $2",
                self._agent_id,
                model_id,
            )
        )
        return [(r[0], r[1]) for r in found]

    def _keyed(self, keys: Sequence[str]) -> tuple[str, str, list[str]]:
        """For a pass over this agent's rows holding any of ``keys``: the test of each key
        (``{}`` stands for key's index), the condition, and the parameters ($1: any key; $2, $3,
        ...: each key; the owner is in every tsquery, so only this agent's rows can match)."""
        test = "tsv @@ ${n}::tsquery"
        owner = self._agent_id
        params = [any_key(owner, keys), *(key_query(owner, k) for k in keys)]
        return test, f"{self._searchable} AND tsv @@ $1::tsquery", params

    async def counts(self, keys: Sequence[str]) -> tuple[Totals, dict[str, int]]:
        # One pass over the rows holding any key (the index finds them), counting each key.
        test, holding, params = self._keyed(keys)
        counted = "".join(
            f", count(*) FILTER (WHERE {test.format(n=i + 2)}) AS key{i}" for i in range(len(keys))
        )
        mine = f"${len(params) + 1}"
        row = await self._db.search(
            lambda conn: conn.fetchrow(
                f"SELECT {self._totals}{counted} FROM agents a LEFT JOIN {self._table} "
                f"ON {holding} WHERE a.id = {mine} GROUP BY a.id",
                *params,
                self._agent_id,
            )
        )
        if row is None:
            return Totals(0), {}
        return Totals(row["docs"], row["terms"]), {k: row[f"key{i}"] for i, k in enumerate(keys)}

    async def holding(self, keys: Sequence[str], uncommon: Uncommon) -> Held:
        # Per key, the ids of its rows as an array; each key's scan stops at the cap.
        owner = self._agent_id
        held = "".join(
            f", ARRAY(SELECT id FROM {self._table} WHERE {self._searchable} "
            f"AND tsv @@ ${i + 5}::tsquery LIMIT c.cap) AS key{i}"
            for i in range(len(keys))
        )
        row = await self._db.search(
            lambda conn: conn.fetchrow(
                f"SELECT t.docs, t.terms, c.cap{held} FROM "
                f"(SELECT {self._totals} FROM agents a WHERE a.id = $1) t, "
                "LATERAL (SELECT floor(least(greatest($2::float8 * t.docs, $3::float8), "
                "$4::float8))::bigint + 1 AS cap) c",
                owner,
                uncommon.share,
                uncommon.few,
                uncommon.most,
                *(key_query(owner, k) for k in keys),
            )
        )
        if row is None:
            return Held(Totals(0), 0, {})
        ids = {k: list(row[f"key{i}"]) for i, k in enumerate(keys) if row[f"key{i}"]}
        return Held(Totals(row["docs"], row["terms"]), row["cap"], ids)

    async def unknown(self, terms: Sequence[str]) -> list[str]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT term FROM {self._table}_vocab WHERE term = ANY($1::text[])", list(terms)
            )
        )
        known = {r["term"] for r in found}
        return [t for t in terms if t not in known]

    async def near(self, head: str, shortest: int, longest: int) -> list[str]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT term FROM {self._table}_vocab WHERE term >= $1 AND term < $2 "
                "AND length(term) BETWEEN $3 AND $4 ORDER BY term",
                head,
                head + "\U0010ffff",
                shortest,
                longest,
            )
        )
        return [r["term"] for r in found]

    async def matches(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        # One pass over the rows holding any key, saying which keys each holds.
        test, holding, params = self._keyed(keys)
        tested = ", ".join(f"{test.format(n=i + 2)} AS key{i}" for i in range(len(keys)))
        found = await self._db.search(
            lambda conn: conn.fetch(
                f"SELECT id, {tested} FROM {self._table} WHERE {holding}", *params
            )
        )
        return [(k, r["id"]) for r in found for i, k in enumerate(keys) if r[f"key{i}"]]

    async def newest(self, key: str, limit: int) -> list[int]:
        found = await self._db.search(
            lambda conn: conn.fetch(
                f"SELECT id FROM {self._table} WHERE {self._searchable} AND tsv @@ $1::tsquery "
                "ORDER BY id DESC LIMIT $2",
                key_query(self._agent_id, key),
                limit,
            )
        )
        return [r["id"] for r in found]


class MessageIndex(_Index):
    def __init__(self, db: Database | Pinned, agent_id: int) -> None:
        totals = "a.search_docs AS docs, a.search_terms AS terms"
        super().__init__(db, agent_id, VectorKind.MESSAGE, totals)

    async def around(
        self, ids: Sequence[int], anchors: Sequence[int], lo: int, hi: int
    ) -> list[Indexed[SearchHit]]:
        if not ids:
            return []
        reach = DEFAULT_WEIGHTS.reach
        offsets = [d for d in range(-reach, reach + 1) if d]
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {_ROW} FROM messages m WHERE m.agent_id = $1 AND m.id = ANY($2::bigint[])"
                " AND m.created_at BETWEEN $3 AND $4 "
                f"UNION SELECT {_ROW} FROM messages m WHERE m.agent_id = $1 AND m.seq IN "
                "(SELECT a.seq + d FROM messages a, unnest($5::int[]) AS d "
                "WHERE a.id = ANY($6::bigint[])) AND m.created_at BETWEEN $3 AND $4",
                self._agent_id,
                list(ids),
                lo,
                hi,
                offsets,
                list(anchors),
            )
        )
        return [_message(r) for r in found]

    async def written_between(self, lo: int, hi: int, limit: int) -> list[Indexed[SearchHit]]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {_ROW} FROM messages m WHERE m.agent_id = $1 AND m.terms IS NOT NULL "
                "AND m.created_at BETWEEN $2 AND $3 ORDER BY m.created_at LIMIT $4",
                self._agent_id,
                lo,
                hi,
                limit,
            )
        )
        return [_message(r) for r in found]

    async def latest_between(self, lo: int, hi: int, limit: int) -> list[SearchHit]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.HIT_COLUMNS} FROM messages WHERE agent_id = $1 "
                "AND terms IS NOT NULL AND created_at BETWEEN $2 AND $3 ORDER BY id DESC LIMIT $4",
                self._agent_id,
                lo,
                hi,
                limit,
            )
        )
        return [rows.hit(r) for r in found]


class PassageIndex(_Index):
    def __init__(self, db: Database | Pinned, agent_id: int) -> None:
        totals = "a.passage_count AS docs, NULL::bigint AS terms"
        super().__init__(db, agent_id, VectorKind.PASSAGE, totals)

    async def rows(self, ids: Sequence[int]) -> list[Indexed[Passage]]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.PASSAGE_COLUMNS}, terms FROM passages "
                "WHERE agent_id = $1 AND id = ANY($2::bigint[])",
                self._agent_id,
                list(ids),
            )
        )
        return [
            Indexed(Candidate(r["id"], r["id"], r["created_at"], r["terms"]), rows.passage(r))
            for r in found
        ]


def _message(r: rows.Row) -> Indexed[SearchHit]:
    return Indexed(Candidate(r["id"], r["seq"], r["created_at"], r["terms"]), rows.hit(r))
