"""``ConsolidationStore`` on SQLite: which messages sleep-time consolidation has read, its runs
and their cost, and its edits stored as block versions by "consolidation"."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import Actor, ConsolidationRun, Unconsolidated
from agentcore.storage.sqlite.blocks import store_block_version
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.passages import insert_passages
from agentcore.storage.sqlite.sql import one_row
from agentcore.types import AgentKey


class ConsolidationRows(Part):
    async def unconsolidated(self, last_before: datetime, limit: int) -> list[Unconsolidated]:
        found = await self._db.fetch(
            "SELECT a.id, a.platform, a.user_id, a.consolidated_through FROM agents a "
            "WHERE a.last_user_at < ? AND EXISTS (SELECT 1 FROM messages m "
            "WHERE m.agent_id = a.id AND m.id > a.consolidated_through) "
            "ORDER BY a.last_user_at LIMIT ?",
            (to_millis(last_before), limit),
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
        [row] = await self._db.fetch(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS spent "
            "FROM consolidations WHERE created_at >= ?",
            (to_millis(since),),
        )
        return int(row["spent"])


async def _record(conn: aiosqlite.Connection, run: ConsolidationRun) -> bool:
    if not await _at_versions(conn, run):
        return False
    claimed = await one_row(
        conn,
        "UPDATE agents SET consolidated_through = ? WHERE id = ? AND consolidated_through = ? "
        "RETURNING id",
        (run.through_id, run.agent_id, run.after_id),
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
        " prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.agent_id,
            run.after_id,
            run.through_id,
            ms,
            run.outcome,
            run.model,
            run.prompt_tokens,
            run.completion_tokens,
        ),
    )
    return True


async def _at_versions(conn: aiosqlite.Connection, run: ConsolidationRun) -> bool:
    """Every edited block is still at the version the edit was made against."""
    for edit in run.edits:
        current = await one_row(
            conn,
            "SELECT version FROM blocks WHERE agent_id = ? AND label = ?",
            (run.agent_id, edit.label),
        )
        if current is None or current["version"] != edit.version:
            return False
    return True
