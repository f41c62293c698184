"""``MessageStore`` on SQLite: recall memory, every message with the platform's timestamp."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import NewMessage, SearchHit, StoredMessage, UserActivity
from agentcore.search import engine
from agentcore.search.fts import scoped
from agentcore.search.meaning import newest_first
from agentcore.search.query import parse_query
from agentcore.search.terms import message_terms
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.search import MessageIndex
from agentcore.storage.sqlite.sql import all_rows

_ROWS_PER_INSERT = 1000  # 7 parameters a row, well under SQLite's variable limit


class MessageRows(Part):
    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        if activity is None and 0 < len(messages) <= _ROWS_PER_INSERT:
            # The common case (a turn's step) is one statement: no transaction round trips.
            sql, params = _insert(agent_id, messages)
            return _ids(await self._db.execute(sql, params))
        return await self._db.write(lambda conn: _append(conn, agent_id, messages, activity))

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        found = await self._db.fetch(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE agent_id = ? AND id >= ? "
            "ORDER BY id",
            (agent_id, since_id),
        )
        return [rows.message(r) for r in found]

    async def all_messages(self, agent_id: int) -> list[StoredMessage]:
        return await self.context_messages(agent_id, 0)

    async def recent_matches(self, agent_id: int, query: str, limit: int) -> list[SearchHit]:
        if self._meaning is not None:  # the best matches, by words and by meaning
            return newest_first(await self.search_messages(agent_id, query, limit=limit))
        parsed = parse_query(query)
        if parsed.empty:
            return []
        found = await self._db.fetch(
            "SELECT m.id, m.role, m.content, m.created_at FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? "
            "ORDER BY messages_fts.rowid DESC LIMIT ?",
            (scoped("agent_id", agent_id, "terms", parsed.terms), limit),
        )
        return [rows.hit(r) for r in found]

    async def search_messages(
        self,
        agent_id: int,
        query: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10,
        fuzzy: bool = True,
    ) -> list[SearchHit]:
        return await engine.find_messages(
            MessageIndex(self._db, agent_id), query, start, end, limit, fuzzy, self._meaning
        )


async def _append(
    conn: aiosqlite.Connection,
    agent_id: int,
    messages: Sequence[NewMessage],
    activity: UserActivity | None,
) -> list[int]:
    ids = await insert_messages(conn, agent_id, messages)
    if activity is not None:
        await record_activity(conn, agent_id, activity)
    return ids


async def record_activity(
    conn: aiosqlite.Connection, agent_id: int, activity: UserActivity
) -> None:
    """Record a person's latest message and session on their agent."""
    await conn.execute(
        "UPDATE agents SET last_user_at = ?, session_count = ?, display_name = ? WHERE id = ?",
        (to_millis(activity.sent_at), activity.session_count, activity.display_name, agent_id),
    )


async def insert_messages(
    conn: aiosqlite.Connection, agent_id: int, messages: Sequence[NewMessage]
) -> list[int]:
    """Insert the rows, a thousand to a statement, and return their ids in order. Each row
    carries its search terms; triggers keep the agent's counts and each searchable row's
    position (``seq``)."""
    ids: list[int] = []
    for start in range(0, len(messages), _ROWS_PER_INSERT):
        sql, params = _insert(agent_id, messages[start : start + _ROWS_PER_INSERT])
        ids += _ids(await all_rows(conn, sql, params))
    return ids


def _insert(agent_id: int, messages: Sequence[NewMessage]) -> tuple[str, list[Any]]:
    """One statement inserting ``messages`` (at most ``_ROWS_PER_INSERT``), and its parameters."""
    params: list[Any] = []
    for m in messages:
        params += [
            agent_id,
            m.role.value,
            m.content,
            rows.dump_calls(m.tool_calls),
            m.tool_call_id,
            to_millis(m.created_at),
            message_terms(m.role, m.content),
        ]
    sql = (
        "INSERT INTO messages (agent_id, role, content, tool_calls, tool_call_id, created_at,"
        f" terms) VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?)'] * len(messages))} RETURNING id"
    )
    return sql, params


def _ids(inserted: list[sqlite3.Row]) -> list[int]:
    # RETURNING order is unspecified; rowids are handed out in VALUES order.
    return sorted(r["id"] for r in inserted)
