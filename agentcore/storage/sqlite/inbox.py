"""``InboxStore`` on SQLite: messages stored as they arrive, taken into recall by their turn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.messages import Role
from agentcore.records import (
    AgentRecord,
    NewAgent,
    NewMessage,
    OpenTurn,
    PendingMessage,
    StoredMessage,
    UserActivity,
)
from agentcore.search.terms import message_terms
from agentcore.storage import rows
from agentcore.storage.sqlite.agents import create_agent
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.files import claim_files, insert_files
from agentcore.storage.sqlite.messages import insert_messages, record_activity
from agentcore.storage.sqlite.sql import all_rows, one_row
from agentcore.types import AgentKey, InboundMessage

_WAITING = "platform = ? AND user_id = ? AND NOT claimed"
_OPEN = "platform = ? AND user_id = ? AND claimed AND NOT finished"  # taken up, not answered


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

    async def store_reply(
        self, key: AgentKey, agent_id: int, messages: Sequence[NewMessage]
    ) -> list[int]:
        return await self._db.write(lambda conn: _store_reply(conn, key, agent_id, messages))

    async def open_turn(self, key: AgentKey) -> OpenTurn | None:
        person = (key.platform, key.user_id)
        found = await self._db.fetch(
            f"SELECT {rows.PENDING_COLUMNS}, (SELECT content FROM messages WHERE id = "
            f"(SELECT max(reply_id) FROM inbox WHERE {_OPEN})) AS reply "
            f"FROM inbox WHERE {_OPEN} ORDER BY id DESC LIMIT 1",
            (*person, *person),
        )
        return rows.open_turn(found[0]) if found else None

    async def finish_turn(self, key: AgentKey) -> None:
        await self._db.execute(
            f"UPDATE inbox SET finished = 1 WHERE {_OPEN}", (key.platform, key.user_id)
        )

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

    async def list_unfinished(self, platform: str) -> list[PendingMessage]:
        found = await self._db.fetch(
            f"SELECT {rows.PENDING_COLUMNS} FROM inbox WHERE id IN (SELECT max(id) FROM inbox"
            " WHERE platform = ? AND claimed AND NOT finished GROUP BY user_id) ORDER BY id",
            (platform,),
        )
        return [rows.pending(r) for r in found]


async def _store_reply(
    conn: aiosqlite.Connection, key: AgentKey, agent_id: int, messages: Sequence[NewMessage]
) -> list[int]:
    """The last step, noted on the person's open rows as their reply (its first message)."""
    ids = await insert_messages(conn, agent_id, messages)
    await conn.execute(
        f"UPDATE inbox SET reply_id = ? WHERE {_OPEN} AND reply_id IS NULL",
        (ids[0], key.platform, key.user_id),
    )
    return ids


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
