"""``ConsolidationStore`` on PostgreSQL: which messages sleep-time consolidation has read, its
runs and their cost, and its edits stored as block versions by "consolidation"."""

from __future__ import annotations

from datetime import datetime

from agentcore.clock import to_millis
from agentcore.records import Actor, ConsolidationRun, Unconsolidated
from agentcore.storage.postgres.blocks import store_block_version
from agentcore.storage.postgres.connection import Conn, Part
from agentcore.storage.postgres.passages import insert_passages
from agentcore.types import AgentKey


class ConsolidationRows(Part):
    async def unconsolidated(self, last_before: datetime, limit: int) -> list[Unconsolidated]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT a.id, a.platform, a.user_id, a.consolidated_through FROM agents a "
                "WHERE a.last_user_at < $1 AND EXISTS (SELECT 1 FROM messages m "
                "WHERE m.agent_id = a.id AND m.id > a.consolidated_through) "
                "ORDER BY a.last_user_at LIMIT $2",
                to_millis(last_before),
                limit,
            )
        )
        return [
            Unconsolidated(
                r["id"], AgentKey(r["platform"], r["user_id"]), r["consolidated_through"]
            )
            for r in found
        ]

    async def record_consolidation(self, run: ConsolidationRun) -> bool:
        return await self._db.write(lambda conn: _record(conn, run))

    async def consolidation_tokens_since(self, since: datetime) -> int:
        spent = await self._db.read(
            lambda conn: conn.fetchval(
                "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM consolidations "
                "WHERE created_at >= $1",
                to_millis(since),
            )
        )
        return int(spent)


async def _record(conn: Conn, run: ConsolidationRun) -> bool:
    if not await _at_versions(conn, run):
        return False
    claimed = await conn.fetchval(
        "UPDATE agents SET consolidated_through = $1 WHERE id = $2 AND consolidated_through = $3 "
        "RETURNING id",
        run.through_id,
        run.agent_id,
        run.after_id,
    )
    if claimed is None:  # another consolidation read these messages: nothing was changed
        return False
    ms = to_millis(run.created_at)
    for edit in run.edits:
        await store_block_version(
            conn, run.agent_id, edit.label, edit.value, Actor.CONSOLIDATION, run.model, ms
        )
    await insert_passages(conn, run.agent_id, run.note_passages())
    await conn.execute(
        "INSERT INTO consolidations (agent_id, after_id, through_id, created_at, outcome, model,"
        " prompt_tokens, completion_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        run.agent_id,
        run.after_id,
        run.through_id,
        ms,
        run.outcome,
        run.model,
        run.prompt_tokens,
        run.completion_tokens,
    )
    return True


async def _at_versions(conn: Conn, run: ConsolidationRun) -> bool:
    """Every edited block is still at the version the edit was made against (and stays so:
    the rows are locked until the transaction ends)."""
    for edit in run.edits:
        version = await conn.fetchval(
            "SELECT version FROM blocks WHERE agent_id = $1 AND label = $2 FOR UPDATE",
            run.agent_id,
            edit.label,
        )
        if version != edit.version:
            return False
    return True
