"""``AgentStore`` on PostgreSQL: agents, their context window and summary, erasure and import."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from agentcore.clock import from_millis, to_millis
from agentcore.records import AgentRecord, AgentSnapshot, AgentSummary, BlockSpec, TurnState
from agentcore.storage import rows
from agentcore.storage.postgres.blocks import insert_blocks
from agentcore.storage.postgres.connection import Conn, Part
from agentcore.storage.postgres.files import delete_person_files
from agentcore.storage.postgres.messages import insert_messages
from agentcore.storage.postgres.passages import insert_passages
from agentcore.storage.protocols import StorageError
from agentcore.types import AgentKey


class AgentRows(Part):
    async def load_agent(self, key: AgentKey) -> AgentRecord | None:
        return await self._db.read(lambda conn: load_agent(conn, key))

    async def load_turn(self, key: AgentKey) -> TurnState | None:
        return await self._db.read(lambda conn: _load_turn(conn, key))

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord | None:
        return await self._db.write(lambda conn: create_agent(conn, key, display_name, now, blocks))

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE agents SET pressure_warned = $1 WHERE id = $2", warned, agent_id
            )
        )

    async def set_prefix_blocks(self, agent_id: int, prefix_blocks: str) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE agents SET prefix_blocks = $1 WHERE id = $2", prefix_blocks, agent_id
            )
        )

    async def fold_context(
        self, agent_id: int, summary: str, context_start_id: int, now: datetime
    ) -> None:
        await self._db.statement(
            lambda conn: _set_summary(conn, agent_id, summary, context_start_id, to_millis(now))
        )

    async def reset_context(self, agent_id: int, now: datetime) -> None:
        # Every message stored from now on, by any process, has a higher id than this.
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE agents SET summary_id = NULL, pressure_warned = false, context_start_id = "
                "nextval(pg_get_serial_sequence('messages', 'id')) WHERE id = $1",
                agent_id,
            )
        )

    async def list_agents(self, limit: int) -> list[AgentSummary]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT a.platform, a.user_id, a.display_name, a.last_user_at, a.message_count, "
                "(SELECT COALESCE(SUM(LENGTH(value)), 0) FROM blocks b WHERE b.agent_id = a.id) "
                "AS core_memory_chars FROM agents a "
                "ORDER BY a.last_user_at DESC NULLS LAST, a.id DESC LIMIT $1",
                limit,
            )
        )
        return [rows.agent_summary(r) for r in found]

    async def delete_agent(self, agent_id: int) -> None:
        await self._db.write(lambda conn: _delete_agent_rows(conn, agent_id))

    async def replace_agent(
        self, key: AgentKey, snapshot: AgentSnapshot, now: datetime
    ) -> AgentRecord:
        return await self._db.write(lambda conn: _replace(conn, key, snapshot, to_millis(now)))


async def load_agent(conn: Conn, key: AgentKey) -> AgentRecord | None:
    row = await conn.fetchrow(
        f"SELECT {rows.AGENT_COLUMNS} FROM {rows.AGENT_FROM} "
        "WHERE a.platform = $1 AND a.user_id = $2",
        key.platform,
        key.user_id,
    )
    return rows.agent(row) if row else None


# Everything a turn starts from in one statement (one round trip, one snapshot): the agent, and
# its blocks, in-context messages and the shared blocks as JSON arrays of rows.
_TURN = f"""SELECT {rows.AGENT_COLUMNS},
    (SELECT COALESCE(json_agg(b ORDER BY b.id), '[]') FROM
        (SELECT id, {rows.BLOCK_COLUMNS} FROM blocks WHERE agent_id = a.id) b) AS blocks,
    (SELECT COALESCE(json_agg(m ORDER BY m.id), '[]') FROM
        (SELECT {rows.MESSAGE_COLUMNS} FROM messages
         WHERE agent_id = a.id AND id >= a.context_start_id) m) AS context,
    (SELECT COALESCE(json_agg(x ORDER BY x.label), '[]') FROM
        (SELECT {rows.SHARED_COLUMNS} FROM shared_blocks) x) AS shared
FROM {rows.AGENT_FROM} WHERE a.platform = $1 AND a.user_id = $2"""


async def _load_turn(conn: Conn, key: AgentKey) -> TurnState | None:
    row = await conn.fetchrow(_TURN, key.platform, key.user_id)
    if row is None:
        return None
    return TurnState(
        rows.agent(row),
        [rows.block(b) for b in json.loads(row["blocks"])],
        [rows.shared_block(s) for s in json.loads(row["shared"])],
        [rows.message(m) for m in json.loads(row["context"])],
    )


async def create_agent(
    conn: Conn, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
) -> AgentRecord | None:
    """The agent with its blocks, or None (and nothing written) if it exists already."""
    ms = to_millis(now)
    agent_id = await conn.fetchval(
        "INSERT INTO agents (platform, user_id, display_name, created_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (platform, user_id) DO NOTHING RETURNING id",
        key.platform,
        key.user_id,
        display_name,
        ms,
    )
    if agent_id is None:
        return None
    await insert_blocks(conn, agent_id, blocks, ms)
    return AgentRecord.fresh(agent_id, key, display_name, from_millis(ms))


async def _set_summary(
    conn: Conn, agent_id: int, summary: str, context_start_id: int, ms: int
) -> None:
    """A new running summary of everything before ``context_start_id``, where the window now
    starts (the memory-pressure note may be given again)."""
    await conn.execute(
        "WITH s AS (INSERT INTO summaries (agent_id, content, through_message_id, created_at) "
        "VALUES ($1, $2, $3, $4) RETURNING id) "
        "UPDATE agents SET summary_id = (SELECT id FROM s), context_start_id = $5, "
        "pressure_warned = false WHERE id = $1",
        agent_id,
        summary,
        context_start_id - 1,
        ms,
        context_start_id,
    )


async def _delete_agent_rows(conn: Conn, agent_id: int, *, redact_audit: bool = True) -> None:
    """Every row of one agent. Audit entries that name the person are redacted to the platform
    alone. (PostgreSQL reuses freed space and never writes a deleted row's text elsewhere;
    VACUUM reclaims it.)"""
    key = await conn.fetchrow("SELECT platform, user_id FROM agents WHERE id = $1", agent_id)
    if key is None:
        return
    await conn.execute(
        "DELETE FROM inbox WHERE platform = $1 AND user_id = $2", key["platform"], key["user_id"]
    )
    await conn.execute("DELETE FROM llm_calls WHERE agent_id = $1", agent_id)
    # Everyone's totals (agent 0) keep the tokens: they name no one.
    await conn.execute("DELETE FROM usage_days WHERE agent_id = $1", agent_id)
    if redact_audit:
        await conn.execute(
            "UPDATE audit_log SET target = $1 || ':(erased)' WHERE target = $1 || ':' || $2",
            key["platform"],
            key["user_id"],
        )
    # Messages and passages first, each in one statement, so their triggers keep the counts and
    # the vocabulary; blocks, their history, summaries, reminders and the person's reminder
    # settings go with the agent (ON DELETE CASCADE).
    await conn.execute("DELETE FROM messages WHERE agent_id = $1", agent_id)
    await conn.execute("DELETE FROM passages WHERE agent_id = $1", agent_id)
    await delete_person_files(conn, agent_id, key["platform"], key["user_id"])
    await conn.execute("DELETE FROM agents WHERE id = $1", agent_id)


async def _replace(conn: Conn, key: AgentKey, snapshot: AgentSnapshot, ms: int) -> AgentRecord:
    existing = await conn.fetchval(
        "SELECT id FROM agents WHERE platform = $1 AND user_id = $2 FOR UPDATE",
        key.platform,
        key.user_id,
    )
    if existing is not None:
        await _delete_agent_rows(conn, existing, redact_audit=False)
    agent_id = await conn.fetchval(
        "INSERT INTO agents (platform, user_id, display_name, created_at) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        key.platform,
        key.user_id,
        snapshot.display_name,
        ms,
    )
    await insert_blocks(conn, agent_id, snapshot.blocks, ms)
    ids = await insert_messages(conn, agent_id, snapshot.messages)
    await insert_passages(conn, agent_id, snapshot.passages)
    await _set_imported_window(conn, agent_id, snapshot, ids, ms)
    agent = await load_agent(conn, key)
    if agent is None:
        raise StorageError(f"agent {key} vanished right after import")
    return agent


async def _set_imported_window(
    conn: Conn, agent_id: int, snapshot: AgentSnapshot, ids: list[int], ms: int
) -> None:
    """Start the context window at the snapshot's in-context messages, under its summary."""
    start, last_user = snapshot.window_start(ids), snapshot.last_user_at
    # An imported history is not a session that just ended: consolidation starts after it.
    await conn.execute(
        "UPDATE agents SET context_start_id = $1, last_user_at = $2, session_count = $3, "
        "consolidated_through = $4 WHERE id = $5",
        start,
        rows.maybe_millis(last_user),
        int(last_user is not None),
        ids[-1] if ids else 0,
        agent_id,
    )
    if snapshot.summary:
        await _set_summary(conn, agent_id, snapshot.summary, start, ms)
