"""``VectorStore`` on SQLite: int8 embeddings beside messages and passages (migration 5)."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from agentcore.records import (
    EmbeddingModel,
    EmbeddingProgress,
    NewVector,
    Unembedded,
    VectorKind,
)
from agentcore.search.meaning import QueryEmbedder
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.sql import all_rows, one_row

# Per kind: the rows' table, which of them are searchable, the vectors' table and its id column.
_TABLES = {
    VectorKind.MESSAGE: ("messages", "terms IS NOT NULL", "message_vectors", "message_id"),
    VectorKind.PASSAGE: ("passages", "1", "passage_vectors", "passage_id"),
}


class VectorRows(Part):
    def search_by_meaning(self, embedder: QueryEmbedder | None) -> None:
        self._meaning = embedder

    async def embedding_model(self, name: str) -> EmbeddingModel:
        await self._db.execute(
            "INSERT INTO embedding_models (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,)
        )
        [row] = await self._db.fetch(
            "SELECT id, name, dims FROM embedding_models WHERE name = ?", (name,)
        )
        return EmbeddingModel(row["id"], row["name"], row["dims"])

    async def set_embedding_dims(self, model_id: int, dims: int) -> int:
        [row] = await self._db.execute(
            "UPDATE embedding_models SET dims = coalesce(dims, ?) WHERE id = ? RETURNING dims",
            (dims, model_id),
        )
        return int(row["dims"])

    async def unembedded(
        self, kind: VectorKind, model_id: int, after_id: int, limit: int
    ) -> list[Unembedded]:
        rows, searchable, vectors, id_column = _TABLES[kind]
        found = await self._db.fetch(
            f"SELECT r.id, r.agent_id, r.content FROM {rows} r WHERE r.id > ? AND {searchable} "
            f"AND NOT EXISTS (SELECT 1 FROM {vectors} v WHERE v.agent_id = r.agent_id "
            f"AND v.{id_column} = r.id AND v.model_id = ?) ORDER BY r.id LIMIT ?",
            (after_id, model_id, limit),
        )
        return [Unembedded(r["id"], r["agent_id"], r["content"] or "") for r in found]

    async def store_vectors(
        self, kind: VectorKind, model_id: int, vectors: Sequence[NewVector]
    ) -> int:
        rows, _, table, id_column = _TABLES[kind]
        sql = (
            f"INSERT OR REPLACE INTO {table} (agent_id, {id_column}, model_id, vector) "
            f"SELECT agent_id, id, ?, ? FROM {rows} WHERE id = ? AND agent_id = ?"
        )

        async def work(conn: aiosqlite.Connection) -> int:
            stored = 0
            for v in vectors:
                cursor = await conn.execute(sql, (model_id, v.vector, v.id, v.agent_id))
                stored += cursor.rowcount
            return stored

        return await self._db.write(work)

    async def embedding_progress(self) -> list[EmbeddingProgress]:
        return await self._db.read(_progress)


async def _progress(conn: aiosqlite.Connection) -> list[EmbeddingProgress]:
    totals = await one_row(
        conn,
        "SELECT coalesce(sum(search_docs), 0) AS messages, "
        "coalesce(sum(passage_count), 0) AS passages FROM agents",
    )
    assert totals is not None
    found = await all_rows(
        conn,
        "SELECT name, (SELECT count(*) FROM message_vectors v WHERE v.model_id = m.id) AS mv, "
        "(SELECT count(*) FROM passage_vectors v WHERE v.model_id = m.id) AS pv "
        "FROM embedding_models m ORDER BY m.id",
    )
    return [
        EmbeddingProgress(r["name"], totals["messages"], r["mv"], totals["passages"], r["pv"])
        for r in found
    ]
