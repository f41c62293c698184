"""``BlockStore`` on PostgreSQL: core memory blocks with their full edit history, shared blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agentcore.clock import to_millis
from agentcore.records import Actor, Block, BlockSpec, BlockVersion, SharedBlock
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Conn, Part, texts


class BlockRows(Part):
    async def list_blocks(self, agent_id: int) -> list[Block]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.BLOCK_COLUMNS} FROM blocks WHERE agent_id = $1 ORDER BY id",
                agent_id,
            )
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
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.HISTORY_COLUMNS} FROM block_history h "
                "JOIN blocks b ON b.id = h.block_id WHERE b.agent_id = $1 AND b.label = $2 "
                "ORDER BY h.version",
                agent_id,
                label,
            )
        )
        return [rows.block_version(r) for r in found]

    async def list_shared_blocks(self) -> list[SharedBlock]:
        return await self._db.read(shared_blocks)

    async def set_shared_block(self, label: str, value: str, by: str, now: datetime) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "INSERT INTO shared_blocks (label, value, updated_at, updated_by) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (label) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                label,
                value,
                to_millis(now),
                by,
            )
        )

    async def delete_shared_block(self, label: str) -> bool:
        deleted = await self._db.statement(
            lambda conn: conn.fetchval(
                "DELETE FROM shared_blocks WHERE label = $1 RETURNING label", label
            )
        )
        return deleted is not None


async def shared_blocks(conn: Conn) -> list[SharedBlock]:
    found = await conn.fetch(f"SELECT {rows.SHARED_COLUMNS} FROM shared_blocks ORDER BY label")
    return [rows.shared_block(r) for r in found]


async def insert_blocks(conn: Conn, agent_id: int, blocks: Sequence[BlockSpec], ms: int) -> None:
    if not blocks:
        return
    await conn.execute(
        "INSERT INTO blocks (agent_id, label, description, value, char_limit, read_only,"
        " updated_at) SELECT $1, * , $7 FROM unnest($2::text[], $3::text[], $4::text[],"
        " $5::int[], $6::bool[])",
        agent_id,
        texts([b.label for b in blocks]),
        texts([b.description for b in blocks]),
        texts([b.value for b in blocks]),
        [b.limit for b in blocks],
        [b.read_only for b in blocks],
        ms,
    )


async def store_block_version(
    conn: Conn, agent_id: int, label: str, value: str, actor: Actor, actor_name: str, ms: int
) -> Block:
    """Replace the value and record the change in the history; KeyError if no such block."""
    current = await conn.fetchrow(
        "SELECT id, value, version FROM blocks WHERE agent_id = $1 AND label = $2 FOR UPDATE",
        agent_id,
        label,
    )
    if current is None:
        raise KeyError(label)
    version = current["version"] + 1
    updated = await conn.fetchrow(
        "UPDATE blocks SET value = $1, version = $2, updated_at = $3 WHERE id = $4 "
        f"RETURNING {rows.BLOCK_COLUMNS}",
        value,
        version,
        ms,
        current["id"],
    )
    assert updated is not None  # the row was just read under a lock
    await conn.execute(
        "INSERT INTO block_history (block_id, version, actor, actor_name, old_value, new_value,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        current["id"],
        version,
        actor.value,
        actor_name,
        current["value"],
        value,
        ms,
    )
    return rows.block(updated)
