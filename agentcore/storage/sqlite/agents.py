"""``AgentStore`` on SQLite: agents, their context window and summary, erasure and import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import from_millis, to_millis
from agentcore.records import (
    AgentRecord,
    AgentSnapshot,
    AgentSummary,
    BlockSpec,
    TurnState,
)
from agentcore.storage import rows
from agentcore.storage.protocols import StorageError
from agentcore.storage.sqlite.blocks import insert_blocks, shared_blocks
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.files import delete_person_files
from agentcore.storage.sqlite.messages import insert_messages
from agentcore.storage.sqlite.passages import insert_passages
from agentcore.storage.sqlite.sql import all_rows, one_row
from agentcore.types import AgentKey

_BY_KEY = "platform = ? AND user_id = ?"
_AGENT_BY_KEY = f"SELECT {rows.AGENT_COLUMNS} FROM {rows.AGENT_FROM} WHERE a.{_BY_KEY}"


class AgentRows(Part):
    async def load_agent(self, key: AgentKey) -> AgentRecord | None:
        found = await self._db.fetch(_AGENT_BY_KEY, (key.platform, key.user_id))
        return rows.agent(found[0]) if found else None

    async def load_turn(self, key: AgentKey) -> TurnState | None:
        return await self._db.read(lambda conn: _load_turn(conn, key))

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord | None:
        return await self._db.write(lambda conn: create_agent(conn, key, display_name, now, blocks))

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None:
        await self._db.execute(
            "UPDATE agents SET pressure_warned = ? WHERE id = ?", (int(warned), agent_id)
        )

    async def set_prefix_blocks(self, agent_id: int, prefix_blocks: str) -> None:
        await self._db.execute(
            "UPDATE agents SET prefix_blocks = ? WHERE id = ?", (prefix_blocks, agent_id)
        )

    async def fold_context(
        self, agent_id: int, summary: str, context_start_id: int, now: datetime
    ) -> None:
        await self._db.write(
            lambda conn: _set_summary(conn, agent_id, summary, context_start_id, to_millis(now))
        )

    async def reset_context(self, agent_id: int, now: datetime) -> None:
        await self._db.execute(
            "UPDATE agents SET summary_id = NULL, pressure_warned = 0, context_start_id = "
            "(SELECT COALESCE(MAX(id), 0) + 1 FROM messages) WHERE id = ?",
            (agent_id,),
        )

    async def list_agents(self, limit: int) -> list[AgentSummary]:
        found = await self._db.fetch(
            "SELECT a.platform, a.user_id, a.display_name, a.last_user_at, a.message_count, "
            "(SELECT COALESCE(SUM(LENGTH(value)), 0) FROM blocks b WHERE b.agent_id = a.id) "
            "AS core_memory_chars "
            "FROM agents a ORDER BY a.last_user_at IS NULL, a.last_user_at DESC, a.id DESC LIMIT ?",
            (limit,),
        )
        return [rows.agent_summary(r) for r in found]

    async def delete_agent(self, agent_id: int) -> None:
        await self._db.write(lambda conn: _erase(conn, agent_id))

    async def replace_agent(
        self, key: AgentKey, snapshot: AgentSnapshot, now: datetime
    ) -> AgentRecord:
        return await self._db.write(lambda conn: _replace(conn, key, snapshot, to_millis(now)))


async def load_agent(conn: aiosqlite.Connection, key: AgentKey) -> AgentRecord | None:
    row = await one_row(conn, _AGENT_BY_KEY, (key.platform, key.user_id))
    return rows.agent(row) if row else None


async def _load_turn(conn: aiosqlite.Connection, key: AgentKey) -> TurnState | None:
    agent = await load_agent(conn, key)
    if agent is None:
        return None
    blocks = await all_rows(
        conn, f"SELECT {rows.BLOCK_COLUMNS} FROM blocks WHERE agent_id = ? ORDER BY id", (agent.id,)
    )
    context = await all_rows(
        conn,
        f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE agent_id = ? AND id >= ? ORDER BY id",
        (agent.id, agent.context_start_id),
    )
    return TurnState(
        agent,
        [rows.block(r) for r in blocks],
        await shared_blocks(conn),
        [rows.message(r) for r in context],
    )


async def create_agent(
    conn: aiosqlite.Connection,
    key: AgentKey,
    display_name: str,
    now: datetime,
    blocks: Sequence[BlockSpec],
) -> AgentRecord | None:
    """The agent with its blocks, or None (and nothing written) if it exists already."""
    ms = to_millis(now)
    created = await one_row(
        conn,
        "INSERT INTO agents (platform, user_id, display_name, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (platform, user_id) DO NOTHING RETURNING id",
        (key.platform, key.user_id, display_name, ms),
    )
    if created is None:
        return None
    await insert_blocks(conn, created["id"], blocks, ms)
    return AgentRecord.fresh(created["id"], key, display_name, from_millis(ms))


async def _set_summary(
    conn: aiosqlite.Connection, agent_id: int, summary: str, context_start_id: int, ms: int
) -> None:
    """A new running summary of everything before ``context_start_id``, where the window now
    starts (the memory-pressure note may be given again)."""
    created = await one_row(
        conn,
        "INSERT INTO summaries (agent_id, content, through_message_id, created_at) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        (agent_id, summary, context_start_id - 1, ms),
    )
    assert created is not None
    await conn.execute(
        "UPDATE agents SET summary_id = ?, context_start_id = ?, pressure_warned = 0 WHERE id = ?",
        (created["id"], context_start_id, agent_id),
    )


async def _erase(conn: aiosqlite.Connection, agent_id: int) -> None:
    # Overwrite freed pages with zeros, so erased text does not linger in the file.
    await conn.execute("PRAGMA secure_delete = ON")
    try:
        await _delete_agent_rows(conn, agent_id)
    finally:
        await conn.execute("PRAGMA secure_delete = OFF")


async def _delete_agent_rows(
    conn: aiosqlite.Connection, agent_id: int, *, redact_audit: bool = True
) -> None:
    """Every row of one agent, children first so the FTS triggers see each row go. Audit
    entries that name the person are redacted to the platform alone."""
    await delete_person_files(conn, agent_id)
    for sql in (
        "DELETE FROM messages WHERE agent_id = ?",
        "DELETE FROM passages WHERE agent_id = ?",
        "UPDATE agents SET summary_id = NULL WHERE id = ?",
        "DELETE FROM summaries WHERE agent_id = ?",
        "DELETE FROM block_history WHERE block_id IN (SELECT id FROM blocks WHERE agent_id = ?)",
        "DELETE FROM blocks WHERE agent_id = ?",
        "DELETE FROM llm_calls WHERE agent_id = ?",
        "DELETE FROM usage_days WHERE agent_id = ?",  # everyone's totals (agent 0) keep them
        "DELETE FROM consolidations WHERE agent_id = ?",
        "DELETE FROM inbox WHERE (platform, user_id) = "
        "(SELECT platform, user_id FROM agents WHERE id = ?)",
    ):
        await conn.execute(sql, (agent_id,))
    if redact_audit:
        await conn.execute(
            "UPDATE audit_log SET target = (SELECT platform FROM agents WHERE id = ?) || "
            "':(erased)' WHERE target = (SELECT platform || ':' || user_id FROM agents "
            "WHERE id = ?)",
            (agent_id, agent_id),
        )
    # Reminders and the person's reminder settings go with the agent (ON DELETE CASCADE).
    await conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,))


async def _replace(
    conn: aiosqlite.Connection, key: AgentKey, snapshot: AgentSnapshot, ms: int
) -> AgentRecord:
    existing = await one_row(
        conn, f"SELECT id FROM agents WHERE {_BY_KEY}", (key.platform, key.user_id)
    )
    if existing is not None:
        await _delete_agent_rows(conn, existing["id"], redact_audit=False)
    await _insert_snapshot(conn, key, snapshot, ms)
    agent = await load_agent(conn, key)
    if agent is None:
        raise StorageError(f"agent {key} vanished right after import")
    return agent


async def _insert_snapshot(
    conn: aiosqlite.Connection, key: AgentKey, snapshot: AgentSnapshot, ms: int
) -> None:
    created = await one_row(
        conn,
        "INSERT INTO agents (platform, user_id, display_name, created_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        (key.platform, key.user_id, snapshot.display_name, ms),
    )
    assert created is not None
    agent_id: int = created["id"]
    await insert_blocks(conn, agent_id, snapshot.blocks, ms)
    ids = await insert_messages(conn, agent_id, snapshot.messages)
    await insert_passages(conn, agent_id, snapshot.passages)
    await _set_imported_window(conn, agent_id, snapshot, ids, ms)


async def _set_imported_window(
    conn: aiosqlite.Connection, agent_id: int, snapshot: AgentSnapshot, ids: list[int], ms: int
) -> None:
    """Start the context window at the snapshot's in-context messages, under its summary."""
    start, last_user = snapshot.window_start(ids), snapshot.last_user_at
    # An imported history is not a session that just ended: consolidation starts after it.
    await conn.execute(
        "UPDATE agents SET context_start_id = ?, last_user_at = ?, session_count = ?, "
        "consolidated_through = ? WHERE id = ?",
        (
            start,
            rows.maybe_millis(last_user),
            int(last_user is not None),
            ids[-1] if ids else 0,
            agent_id,
        ),
    )
    if snapshot.summary:
        await _set_summary(conn, agent_id, snapshot.summary, start, ms)
