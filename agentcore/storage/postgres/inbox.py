"""``InboxStore`` on PostgreSQL: messages stored as they arrive, taken into recall by their turn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
from agentcore.storage.postgres.agents import create_agent
from agentcore.storage.postgres.connection import Conn, Part
from agentcore.storage.postgres.files import insert_files
from agentcore.storage.postgres.messages import INSERT_MESSAGES, record_activity, rows_of
from agentcore.types import AgentKey, InboundMessage

_WAITING = "platform = $1 AND user_id = $2 AND NOT claimed"
_OPEN = "platform = $1 AND user_id = $2 AND claimed AND NOT finished"  # taken up, not answered


class InboxRows(Part):
    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        if not message.files:  # the common case: one statement, no transaction round trips
            stored: int | None = await self._db.statement(
                lambda conn: _insert(conn, message, received_at)
            )
            return stored
        return await self._db.write(lambda conn: _with_files(conn, message, received_at))

    async def prune_inbox(self, before: datetime) -> int:
        pruned = await self._db.statement(
            lambda conn: conn.fetch(
                "DELETE FROM inbox WHERE claimed AND received_at < $1 RETURNING id",
                to_millis(before),
            )
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
        stored = await self._db.statement(
            lambda conn: conn.fetch(
                _STORE_REPLY, agent_id, *rows_of(messages), key.platform, key.user_id
            )
        )
        return sorted(r["id"] for r in stored)  # drawn in the order of the messages

    async def open_turn(self, key: AgentKey) -> OpenTurn | None:
        found = await self._db.read(
            lambda conn: conn.fetchrow(
                f"SELECT {rows.PENDING_COLUMNS}, (SELECT content FROM messages WHERE id = "
                f"(SELECT max(reply_id) FROM inbox WHERE {_OPEN})) AS reply "
                f"FROM inbox WHERE {_OPEN} ORDER BY id DESC LIMIT 1",
                key.platform,
                key.user_id,
            )
        )
        return rows.open_turn(found) if found is not None else None

    async def finish_turn(self, key: AgentKey) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                f"UPDATE inbox SET finished = true WHERE {_OPEN}", key.platform, key.user_id
            )
        )

    async def count_pending(self, key: AgentKey) -> int:
        waiting = await self._db.read(
            lambda conn: conn.fetchval(
                f"SELECT count(*) FROM inbox WHERE {_WAITING}", key.platform, key.user_id
            )
        )
        return int(waiting)

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.PENDING_COLUMNS} FROM inbox WHERE NOT claimed"
                " AND ($1::text IS NULL OR platform = $1) ORDER BY id",
                platform,
            )
        )
        return [rows.pending(r) for r in found]

    async def list_unfinished(self, platform: str) -> list[PendingMessage]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.PENDING_COLUMNS} FROM inbox WHERE id IN (SELECT max(id) FROM inbox"
                " WHERE platform = $1 AND claimed AND NOT finished GROUP BY user_id) ORDER BY id",
                platform,
            )
        )
        return [rows.pending(r) for r in found]


# The turn's last step and, in the same statement, its first message (the reply) noted on the
# person's rows the turn took up.
_STORE_REPLY = f"""WITH {INSERT_MESSAGES},
noted AS (UPDATE inbox SET reply_id = (SELECT min(id) FROM stored)
    WHERE platform = $8 AND user_id = $9 AND claimed AND NOT finished AND reply_id IS NULL)
SELECT id FROM stored"""


async def _insert(conn: Conn, message: InboundMessage, received_at: datetime) -> int | None:
    stored: int | None = await conn.fetchval(
        "INSERT INTO inbox (platform, user_id, display_name, chat, text, sent_at, route,"
        " received_at, source, terms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (platform, source) WHERE source IS NOT NULL DO NOTHING RETURNING id",
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
    return stored


async def _with_files(conn: Conn, message: InboundMessage, received_at: datetime) -> int | None:
    """The waiting message and its files, together (nothing if it is a redelivery)."""
    stored = await _insert(conn, message, received_at)
    if stored is not None:
        await insert_files(conn, stored, message, received_at)
    return stored


# Take this person's waiting messages (up to $3) into agent $4's recall, in one statement: the
# agent's row is locked before the first id is drawn (see ``messages.insert_messages``), and the
# waiting rows are locked (``FOR UPDATE``) so that a turn of the same person in another process
# that got there first has claimed them by the time this one reads them. The text then lives
# in recall; the inbox row stays a while to recognise redeliveries. Their files move to the
# agent and to the message each became (the n-th oldest waiting row is the n-th new message).
_CLAIM = f"""WITH owner AS (SELECT id FROM agents WHERE id = $4 FOR UPDATE),
taken AS (
    UPDATE inbox i SET claimed = true, text = '', terms = NULL
    FROM (SELECT id, text, sent_at, terms FROM inbox WHERE {_WAITING} AND id <= $3
          ORDER BY id FOR UPDATE) w
    WHERE i.id = w.id RETURNING w.id, w.text, w.sent_at, w.terms),
inserted AS (
    INSERT INTO messages (agent_id, role, content, created_at, terms)
    SELECT owner.id, 'user', t.text, t.sent_at, t.terms FROM owner, taken t ORDER BY t.id
    RETURNING id, content, created_at),
moved AS (
    UPDATE files f SET agent_id = $4, message_id = m.id
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM inserted) m
    JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM taken) w ON w.n = m.n
    WHERE f.inbox_id = w.id)
SELECT id, content, created_at FROM inserted"""


async def _claim(
    conn: Conn, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
) -> list[StoredMessage]:
    """Move this person's waiting messages (up to ``up_to_id``) into the agent's recall, oldest
    first, and record their activity; nothing if none is left (answered already)."""
    claimed = await conn.fetch(_CLAIM, key.platform, key.user_id, up_to_id, agent_id)
    if not claimed:
        return []
    await record_activity(conn, agent_id, activity)
    # Ids are drawn in the ORDER BY's order, oldest message first.
    return [rows.claimed(r) for r in sorted(claimed, key=lambda r: int(r["id"]))]


async def _start(
    conn: Conn, key: AgentKey, up_to_id: int, agent: NewAgent, activity: UserActivity
) -> tuple[AgentRecord, list[StoredMessage]] | None:
    """A new person's agent and their first claim; None, writing nothing, if it exists."""
    created = await create_agent(conn, key, agent.display_name, agent.created_at, agent.blocks)
    if created is None:
        return None
    return created, await _claim(conn, key, up_to_id, created.id, activity)
