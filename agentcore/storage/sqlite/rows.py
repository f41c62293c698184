"""Rows as records: the columns each record is read from, and the mapping, by column name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from agentcore.clock import from_millis, to_millis
from agentcore.messages import Role, ToolCall
from agentcore.records import (
    AgentRecord,
    Block,
    Passage,
    SearchHit,
    SharedBlock,
    StoredMessage,
)
from agentcore.types import AgentKey

# An agent row with its current summary: FROM agents a LEFT JOIN summaries s.
AGENT_COLUMNS = """a.id, a.platform, a.user_id, a.display_name, a.created_at, a.last_user_at,
    a.session_count, a.message_count, a.passage_count, a.context_start_id,
    COALESCE(s.content, '') AS summary, a.pressure_warned, a.prefix_blocks"""
AGENT_FROM = "agents a LEFT JOIN summaries s ON s.id = a.summary_id"
MESSAGE_COLUMNS = "id, role, content, created_at, tool_calls, tool_call_id"
BLOCK_COLUMNS = "label, value, char_limit, description, read_only, version, updated_at"
SHARED_COLUMNS = "label, value, updated_at, updated_by"
PASSAGE_COLUMNS = "id, content, tags, created_at"
HIT_COLUMNS = "id, role, content, created_at"

Params = Sequence[Any]


async def all_rows(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    """Every row of ``sql``, the statement run to its end (so its changes are made)."""
    return list(await conn.execute_fetchall(sql, params))


async def one_row(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> sqlite3.Row | None:
    """The first row of ``sql`` (run to its end), or None."""
    rows = await all_rows(conn, sql, params)
    return rows[0] if rows else None


def maybe_time(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def maybe_millis(at: datetime | None) -> int | None:
    return None if at is None else to_millis(at)


def agent(r: sqlite3.Row) -> AgentRecord:
    return AgentRecord(
        id=r["id"],
        key=AgentKey(r["platform"], r["user_id"]),
        display_name=r["display_name"],
        created_at=from_millis(r["created_at"]),
        last_user_at=maybe_time(r["last_user_at"]),
        session_count=r["session_count"],
        message_count=r["message_count"],
        passage_count=r["passage_count"],
        context_start_id=r["context_start_id"],
        summary=r["summary"],
        pressure_warned=bool(r["pressure_warned"]),
        prefix_blocks=r["prefix_blocks"],
    )


def block(r: sqlite3.Row) -> Block:
    return Block(
        label=r["label"],
        value=r["value"],
        limit=r["char_limit"],
        description=r["description"],
        read_only=bool(r["read_only"]),
        version=r["version"],
        updated_at=from_millis(r["updated_at"]),
    )


def shared_block(r: sqlite3.Row) -> SharedBlock:
    return SharedBlock(r["label"], r["value"], from_millis(r["updated_at"]), r["updated_by"])


def message(r: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=r["id"],
        role=Role(r["role"]),
        content=r["content"],
        created_at=from_millis(r["created_at"]),
        tool_calls=load_calls(r["tool_calls"]),
        tool_call_id=r["tool_call_id"],
    )


def hit(r: sqlite3.Row, score: float = 0.0) -> SearchHit:
    return SearchHit(r["id"], Role(r["role"]), r["content"], from_millis(r["created_at"]), score)


def passage(r: sqlite3.Row, score: float = 0.0) -> Passage:
    return Passage(
        r["id"], r["content"], tuple(r["tags"].split()), from_millis(r["created_at"]), score
    )


def dump_calls(calls: Iterable[ToolCall]) -> str | None:
    payload = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return json.dumps(payload) if payload else None


def load_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in json.loads(text))
