"""``VectorStore`` on PostgreSQL: int8 embeddings beside messages and passages (migration 4)."""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.records import (
    EmbeddingModel,
    EmbeddingProgress,
    NewVector,
    Unembedded,
    VectorKind,
)
from agentcore.search.meaning import QueryEmbedder
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Conn, Part
from agentcore.storage.rows import VECTOR_TABLES


class VectorRows(Part):
    def search_by_meaning(self, embedder: QueryEmbedder | None) -> None:
        self._meaning = embedder

    async def embedding_model(self, name: str) -> EmbeddingModel:
        row = await self._db.write(
            lambda conn: conn.fetchrow(
                "WITH added AS (INSERT INTO embedding_models (name) VALUES ($1) "
                "ON CONFLICT (name) DO NOTHING RETURNING id, name, dims) "
                "SELECT * FROM added UNION ALL "
                "SELECT id, name, dims FROM embedding_models WHERE name = $1",
                name,
            )
        )
        assert row is not None
        return EmbeddingModel(row["id"], row["name"], row["dims"])

    async def set_embedding_dims(self, model_id: int, dims: int) -> int:
        found = await self._db.statement(
            lambda conn: conn.fetchval(
                "UPDATE embedding_models SET dims = coalesce(dims, $1) WHERE id = $2 "
                "RETURNING dims",
                dims,
                model_id,
            )
        )
        return int(found)

    async def unembedded(
        self, kind: VectorKind, model_id: int, after_id: int, limit: int
    ) -> list[Unembedded]:
        table, searchable, vectors, id_column = VECTOR_TABLES[kind]
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT r.id, r.agent_id, r.content FROM {table} r WHERE r.id > $1 "
                f"AND {searchable} AND NOT EXISTS (SELECT 1 FROM {vectors} v WHERE "
                f"v.agent_id = r.agent_id AND v.{id_column} = r.id AND v.model_id = $2) "
                "ORDER BY r.id LIMIT $3",
                after_id,
                model_id,
                limit,
            )
        )
        return [rows.unembedded(r) for r in found]

    async def store_vectors(
        self, kind: VectorKind, model_id: int, vectors: Sequence[NewVector]
    ) -> int:
        table, _, vector_table, id_column = VECTOR_TABLES[kind]
        # The rows are locked against deletion while their vectors go in: a /forget running
        # meanwhile either waits and then erases these vectors too, or went first and leaves
        # nothing to join.
        sql = (
            f"INSERT INTO {vector_table} (agent_id, {id_column}, model_id, vector) "
            "SELECT r.agent_id, r.id, $1, v.vector FROM "
            "unnest($2::bigint[], $3::bigint[], $4::bytea[]) AS v(id, agent_id, vector) "
            f"JOIN {table} r ON r.id = v.id AND r.agent_id = v.agent_id FOR KEY SHARE OF r "
            f"ON CONFLICT (agent_id, {id_column}) DO UPDATE "
            "SET model_id = excluded.model_id, vector = excluded.vector RETURNING 1"
        )

        async def work(conn: Conn) -> int:
            ids, owners = [v.id for v in vectors], [v.agent_id for v in vectors]
            return len(await conn.fetch(sql, model_id, ids, owners, [v.vector for v in vectors]))

        return await self._db.statement(work)

    async def embedding_progress(self) -> list[EmbeddingProgress]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.PROGRESS_COLUMNS} FROM embedding_models m, "
                f"{rows.PROGRESS_TOTALS} ORDER BY m.id"
            )
        )
        return [rows.progress(r) for r in found]
