"""``MessageStore`` on PostgreSQL: recall memory, every message with the platform's timestamp."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agentcore.clock import to_millis
from agentcore.records import NewMessage, SearchHit, StoredMessage, UserActivity
from agentcore.search import engine
from agentcore.search.meaning import newest_first
from agentcore.search.query import parse_query
from agentcore.search.terms import message_terms
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Conn, Part, texts
from agentcore.storage.postgres.search import MessageIndex, any_key


class MessageRows(Part):
    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        if activity is None:  # one INSERT: atomic by itself
            return await self._db.statement(lambda conn: insert_messages(conn, agent_id, messages))
        return await self._db.write(lambda conn: _append(conn, agent_id, messages, activity))

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE agent_id = $1 AND id >= $2 "
                "ORDER BY id",
                agent_id,
                since_id,
            )
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
        found = await self._db.search(
            lambda conn: conn.fetch(
                f"SELECT {rows.HIT_COLUMNS} FROM messages "
                "WHERE terms IS NOT NULL AND tsv @@ $1::tsquery ORDER BY id DESC LIMIT $2",
                any_key(agent_id, parsed.terms),  # this agent's rows only (see search)
                limit,
            )
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
    conn: Conn, agent_id: int, messages: Sequence[NewMessage], activity: UserActivity
) -> list[int]:
    ids = await insert_messages(conn, agent_id, messages)
    await record_activity(conn, agent_id, activity)
    return ids


async def record_activity(conn: Conn, agent_id: int, activity: UserActivity) -> None:
    """Record a person's latest message and session on their agent."""
    await conn.execute(
        "UPDATE agents SET last_user_at = $1, session_count = $2, display_name = $3 WHERE id = $4",
        to_millis(activity.sent_at),
        activity.session_count,
        activity.display_name,
        agent_id,
    )


async def insert_messages(conn: Conn, agent_id: int, messages: Sequence[NewMessage]) -> list[int]:
    """Insert the rows in one statement and return their ids in order. Each row carries its
    search terms; triggers keep the agent's counts and each searchable row's position.

    The agent's row is locked before the first id is drawn, so the rows of one transaction get
    consecutive ids among the agent's messages (another transaction writing for the same agent
    waits), and a tool call is never separated from its result in the agent's history.
    """
    if not messages:
        return []
    found = await conn.fetch(
        f"WITH {INSERT_MESSAGES} SELECT id FROM stored", agent_id, *rows_of(messages)
    )
    # Identity values are drawn in the order rows are inserted, which is the ORDER BY's.
    return sorted(r["id"] for r in found)


# A statement's part (a WITH list) inserting messages ($2..$7, ``rows_of``) for agent $1 as
# ``stored``, its ids drawn once the agent's row is locked (see ``insert_messages``).
INSERT_MESSAGES = """owner AS (SELECT id FROM agents WHERE id = $1 FOR UPDATE),
stored AS (INSERT INTO messages (agent_id, role, content, tool_calls, tool_call_id, created_at,
    terms) SELECT owner.id, m.role, m.content, m.tool_calls, m.tool_call_id, m.created_at,
    m.terms FROM owner, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
    $7::text[]) WITH ORDINALITY AS m(role, content, tool_calls, tool_call_id, created_at, terms, n)
    ORDER BY m.n RETURNING id)"""


def rows_of(messages: Sequence[NewMessage]) -> tuple[object, ...]:
    """Parameters $2..$7 of ``INSERT_MESSAGES``: one array per column."""
    return (
        [m.role.value for m in messages],
        texts([m.content for m in messages]),
        texts([rows.dump_calls(m.tool_calls) for m in messages]),
        texts([m.tool_call_id for m in messages]),
        [to_millis(m.created_at) for m in messages],
        [message_terms(m.role, m.content) for m in messages],
    )
