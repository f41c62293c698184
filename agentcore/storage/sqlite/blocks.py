"""``BlockStore`` on SQLite: core memory blocks with their full edit history, shared blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import Actor, Block, BlockSpec, BlockVersion, SharedBlock
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.sql import all_rows, one_row

_SHARED = f"SELECT {rows.SHARED_COLUMNS} FROM shared_blocks ORDER BY label"


class BlockRows(Part):
    async def list_blocks(self, agent_id: int) -> list[Block]:
        found = await self._db.fetch(
            f"SELECT {rows.BLOCK_COLUMNS} FROM blocks WHERE agent_id = ? ORDER BY id", (agent_id,)
        )
        return [rows.block(r) for r in found]

    async def save_block(
        self, agent_id: int, label: str, value: str, actor: Actor, actor_name: str, now: datetime
    ) -> Block:
        ms = to_millis(now)
        return await self._db.write(
            lambda conn: store_block_version(conn, agent_id, label, value, actor, actor_name, ms)
        )

    async def block_history(self, agent_id: int, label: str) -> list[BlockVersion]:
        found = await self._db.fetch(
            f"SELECT {rows.HISTORY_COLUMNS} FROM block_history h "
            "JOIN blocks b ON b.id = h.block_id "
            "WHERE b.agent_id = ? AND b.label = ? ORDER BY h.version",
            (agent_id, label),
        )
        return [rows.block_version(r) for r in found]

    async def list_shared_blocks(self) -> list[SharedBlock]:
        found = await self._db.fetch(_SHARED)
        return [rows.shared_block(r) for r in found]

    async def set_shared_block(self, label: str, value: str, by: str, now: datetime) -> None:
        await self._db.execute(
            "INSERT INTO shared_blocks (label, value, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (label) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (label, value, to_millis(now), by),
        )

    async def delete_shared_block(self, label: str) -> bool:
        deleted = await self._db.execute(
            "DELETE FROM shared_blocks WHERE label = ? RETURNING label", (label,)
        )
        return bool(deleted)


async def shared_blocks(conn: aiosqlite.Connection) -> list[SharedBlock]:
    found = await all_rows(conn, _SHARED)
    return [rows.shared_block(r) for r in found]


async def insert_blocks(
    conn: aiosqlite.Connection, agent_id: int, blocks: Sequence[BlockSpec], ms: int
) -> None:
    await conn.executemany(
        "INSERT INTO blocks (agent_id, label, description, value, char_limit, read_only,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (agent_id, b.label, b.description, b.value, b.limit, int(b.read_only), ms)
            for b in blocks
        ],
    )


async def store_block_version(
    conn: aiosqlite.Connection,
    agent_id: int,
    label: str,
    value: str,
    actor: Actor,
    actor_name: str,
    ms: int,
) -> Block:
    """Replace the value and record the change in the history; KeyError if no such block."""
    current = await one_row(
        conn,
        "SELECT id, value, version FROM blocks WHERE agent_id = ? AND label = ?",
        (agent_id, label),
    )
    if current is None:
        raise KeyError(label)
    version = current["version"] + 1
    updated = await one_row(
        conn,
        "UPDATE blocks SET value = ?, version = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {rows.BLOCK_COLUMNS}",
        (value, version, ms, current["id"]),
    )
    assert updated is not None
    await conn.execute(
        "INSERT INTO block_history (block_id, version, actor, actor_name, old_value, new_value,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (current["id"], version, actor.value, actor_name, current["value"], value, ms),
    )
    return rows.block(updated)
