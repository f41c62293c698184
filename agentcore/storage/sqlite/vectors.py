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
from agentcore.storage import rows
from agentcore.storage.rows import VECTOR_TABLES
from agentcore.storage.sqlite.connection import Part


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
        table, searchable, vectors, id_column = VECTOR_TABLES[kind]
        found = await self._db.fetch(
            f"SELECT r.id, r.agent_id, r.content FROM {table} r WHERE r.id > ? AND {searchable} "
            f"AND NOT EXISTS (SELECT 1 FROM {vectors} v WHERE v.agent_id = r.agent_id "
            f"AND v.{id_column} = r.id AND v.model_id = ?) ORDER BY r.id LIMIT ?",
            (after_id, model_id, limit),
        )
        return [rows.unembedded(r) for r in found]

    async def store_vectors(
        self, kind: VectorKind, model_id: int, vectors: Sequence[NewVector]
    ) -> int:
        table, _, vector_table, id_column = VECTOR_TABLES[kind]
        sql = (
            f"INSERT OR REPLACE INTO {vector_table} (agent_id, {id_column}, model_id, vector) "
            f"SELECT agent_id, id, ?, ? FROM {table} WHERE id = ? AND agent_id = ?"
        )

        async def work(conn: aiosqlite.Connection) -> int:
            stored = 0
            for v in vectors:
                cursor = await conn.execute(sql, (model_id, v.vector, v.id, v.agent_id))
                stored += cursor.rowcount
            return stored

        return await self._db.write(work)

    async def embedding_progress(self) -> list[EmbeddingProgress]:
        found = await self._db.fetch(
            f"SELECT {rows.PROGRESS_COLUMNS} FROM embedding_models m, {rows.PROGRESS_TOTALS} "
            "ORDER BY m.id"
        )
        return [rows.progress(r) for r in found]
