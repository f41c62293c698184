"""Forward-only SQL migrations (``migrations/NNNN_name.sql``), recorded in ``user_version``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosqlite

from agentcore.messages import Role
from agentcore.search.terms import message_terms, passage_terms
from agentcore.storage.protocols import StorageError
from agentcore.storage.schema import migration_files
from agentcore.storage.sqlite.connection import in_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.rstrip(";").strip():
                statements.append(statement)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise ValueError(f"incomplete SQL statement at end of migration: {pending.strip()[:80]}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def load_migrations() -> list[Migration]:
    """Every migration shipped in ``agentcore/storage/sqlite/migrations``, in order."""
    return [
        Migration(f.version, f.name, tuple(split_statements(f.script)))
        for f in migration_files(__package__ or "agentcore.storage.sqlite")
    ]


async def migrate(conn: aiosqlite.Connection) -> None:
    """Apply the migrations this file has not seen yet, all in one transaction."""
    migrations = load_migrations()
    version = await _version(conn)
    if version > len(migrations):
        raise StorageError(
            f"the database's schema is version {version}, newer than this program's "
            f"({len(migrations)}): run the newer version of the bot, or another database"
        )
    if version == len(migrations):
        return  # the common case: nothing to do, one cheap read

    async def apply_pending(conn: aiosqlite.Connection) -> None:
        # Re-read under the write lock: another process may have migrated meanwhile.
        for migration in migrations[await _version(conn) :]:
            log.info("applying database migration %s", migration.name)
            for statement in migration.statements:
                await conn.execute(statement)
            after = _AFTER_MIGRATION.get(migration.version)
            if after is not None:
                await after(conn)
            await conn.execute(f"PRAGMA user_version = {migration.version}")

    await in_transaction(conn, "BEGIN IMMEDIATE", apply_pending)


async def _version(conn: aiosqlite.Connection) -> int:
    [row] = await conn.execute_fetchall("PRAGMA user_version")
    return int(row["user_version"])


_BACKFILL_BATCH = 5000


async def _index_existing_rows(conn: aiosqlite.Connection) -> None:
    """Migration 2: give rows stored before it their search terms and positions, and index them.

    Runs once, inside the migration's transaction, in batches so memory stays flat.
    """
    per_agent: dict[int, list[int]] = {}  # agent id → [searchable rows, their terms]
    last_id = 0
    while True:
        rows = list(
            await conn.execute_fetchall(
                "SELECT id, agent_id, role, content FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, _BACKFILL_BATCH),
            )
        )
        if not rows:
            break
        updates = []
        for row in rows:
            terms = message_terms(Role(row["role"]), row["content"])
            if terms is not None:
                counts = per_agent.setdefault(row["agent_id"], [0, 0])
                updates.append((terms, counts[0], row["id"]))
                counts[0] += 1
                counts[1] += len(terms.split())
        await conn.executemany("UPDATE messages SET terms = ?, seq = ? WHERE id = ?", updates)
        last_id = rows[-1]["id"]
    await conn.executemany(
        "UPDATE agents SET search_docs = ?, search_terms = ? WHERE id = ?",
        [(docs, terms, agent_id) for agent_id, (docs, terms) in per_agent.items()],
    )
    await conn.execute(
        "INSERT INTO messages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM messages WHERE terms IS NOT NULL"
    )
    passages = await conn.execute_fetchall("SELECT id, content, tags FROM passages")
    await conn.executemany(
        "UPDATE passages SET terms = ? WHERE id = ?",
        [(passage_terms(p["content"], p["tags"].split()), p["id"]) for p in passages],
    )
    await conn.execute(
        "INSERT INTO passages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM passages"
    )


# Python steps that complete a SQL migration (keyed by its version), in the same transaction.
_AFTER_MIGRATION: dict[int, Callable[[aiosqlite.Connection], Awaitable[None]]] = {
    2: _index_existing_rows,
}
