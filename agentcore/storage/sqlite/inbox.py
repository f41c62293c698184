"""``InboxStore`` on SQLite: messages stored as they arrive, taken into recall by their turn."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.messages import Role
from agentcore.records import AgentRecord, NewAgent, PendingMessage, StoredMessage, UserActivity
from agentcore.search.terms import message_terms
from agentcore.storage import rows
from agentcore.storage.sqlite.agents import create_agent
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.files import claim_files, insert_files
from agentcore.storage.sqlite.messages import record_activity
from agentcore.storage.sqlite.sql import all_rows, one_row
from agentcore.types import AgentKey, InboundMessage

_WAITING = "platform = ? AND user_id = ? AND NOT claimed"


class InboxRows(Part):
    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        params = (
            message.key.platform,
            message.key.user_id,
            message.display_name,
            message.chat.value,
            message.text,
            to_millis(message.sent_at),
            message.route,
            to_millis(received_at),
            message.source or None,
            message_terms(Role.USER, message.text),  # analysed now, off the turn's path
        )
        sql = (
            "INSERT INTO inbox (platform, user_id, display_name, chat, text, sent_at, route,"
            " received_at, source, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, source) WHERE source IS NOT NULL DO NOTHING RETURNING id"
        )
        if not message.files:  # the common case: one statement, no transaction round trips
            stored = await self._db.execute(sql, params)
            return int(stored[0]["id"]) if stored else None

        async def with_files(conn: aiosqlite.Connection) -> int | None:
            row = await one_row(conn, sql, params)
            if row is None:
                return None
            await insert_files(conn, row["id"], message, received_at)
            return int(row["id"])

        return await self._db.write(with_files)

    async def prune_inbox(self, before: datetime) -> int:
        pruned = await self._db.execute(
            "DELETE FROM inbox WHERE claimed AND received_at < ? RETURNING id", (to_millis(before),)
        )
        return len(pruned)

    async def claim_pending(
        self, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
    ) -> list[StoredMessage]:
        return await self._db.write(lambda conn: _claim(conn, key, up_to_id, agent_id, activity))

    async def start_agent(
        self,
        key: AgentKey,
        up_to_id: int,
        agent: NewAgent,
        activity: UserActivity,
    ) -> tuple[AgentRecord, list[StoredMessage]] | None:
        return await self._db.write(lambda conn: _start(conn, key, up_to_id, agent, activity))

    async def count_pending(self, key: AgentKey) -> int:
        [found] = await self._db.fetch(
            f"SELECT COUNT(*) AS waiting FROM inbox WHERE {_WAITING}", (key.platform, key.user_id)
        )
        return int(found["waiting"])

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        found = await self._db.fetch(
            f"SELECT {rows.PENDING_COLUMNS} FROM inbox WHERE NOT claimed"
            " AND (? IS NULL OR platform = ?) ORDER BY id",
            (platform, platform),
        )
        return [rows.pending(r) for r in found]


async def _claim(
    conn: aiosqlite.Connection, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
) -> list[StoredMessage]:
    """Move this person's waiting messages (up to ``up_to_id``) into the agent's recall, oldest
    first, and record their activity; nothing if none is left (answered already)."""
    mine = f"{_WAITING} AND id <= ?"
    params = (key.platform, key.user_id, up_to_id)
    waiting = await all_rows(conn, f"SELECT id FROM inbox WHERE {mine} ORDER BY id", params)
    claimed = await all_rows(
        conn,
        "INSERT INTO messages (agent_id, role, content, created_at, terms) "
        f"SELECT ?, 'user', text, sent_at, terms FROM inbox WHERE {mine} ORDER BY id "
        "RETURNING id, content, created_at",
        (agent_id, *params),
    )
    if not claimed:
        return []
    # The text now lives in recall; the row stays a while to recognise redeliveries.
    await conn.execute(
        f"UPDATE inbox SET claimed = 1, text = '', terms = NULL WHERE {mine}", params
    )
    await record_activity(conn, agent_id, activity)
    # RETURNING order is unspecified; rowids follow the ORDER BY.
    claimed.sort(key=lambda r: int(r["id"]))
    await claim_files(conn, agent_id, [w["id"] for w in waiting], [r["id"] for r in claimed])
    return [rows.claimed(r) for r in claimed]


async def _start(
    conn: aiosqlite.Connection,
    key: AgentKey,
    up_to_id: int,
    agent: NewAgent,
    activity: UserActivity,
) -> tuple[AgentRecord, list[StoredMessage]] | None:
    """A new person's agent and their first claim; None, writing nothing, if it exists."""
    created = await create_agent(conn, key, agent.display_name, agent.created_at, agent.blocks)
    if created is None:
        return None
    return created, await _claim(conn, key, up_to_id, created.id, activity)
