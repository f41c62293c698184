"""Forward-only SQL migrations (``migrations/NNNN_name.sql``), recorded in ``user_version``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from agentcore.messages import Role
from agentcore.search.terms import message_terms, passage_terms
from agentcore.storage.protocols import StorageError
from agentcore.storage.schema import migration_files

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


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file has not seen yet, all in one transaction."""
    migrations = load_migrations()
    version = _version(conn)
    if version > len(migrations):
        raise StorageError(
            f"the database's schema is version {version}, newer than this program's "
            f"({len(migrations)}): run the newer version of the bot, or another database"
        )
    if version == len(migrations):
        return  # the common case: nothing to do, one cheap read
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        for migration in migrations[_version(conn) :]:
            log.info("applying database migration %s", migration.name)
            for statement in migration.statements:
                conn.execute(statement)
            after = _AFTER_MIGRATION.get(migration.version)
            if after is not None:
                after(conn)
            conn.execute(f"PRAGMA user_version = {migration.version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


_BACKFILL_BATCH = 5000


def _index_existing_rows(conn: sqlite3.Connection) -> None:
    """Migration 2: give rows stored before it their search terms and positions, and index them.

    Runs once, inside the migration's transaction, in batches so memory stays flat.
    """
    per_agent: dict[int, list[int]] = {}  # agent id → [searchable rows, their terms]
    last_id = 0
    while True:
        rows = conn.execute(
            "SELECT id, agent_id, role, content FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, _BACKFILL_BATCH),
        ).fetchall()
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
        conn.executemany("UPDATE messages SET terms = ?, seq = ? WHERE id = ?", updates)
        last_id = rows[-1]["id"]
    conn.executemany(
        "UPDATE agents SET search_docs = ?, search_terms = ? WHERE id = ?",
        [(docs, terms, agent_id) for agent_id, (docs, terms) in per_agent.items()],
    )
    conn.execute(
        "INSERT INTO messages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM messages WHERE terms IS NOT NULL"
    )
    passages = conn.execute("SELECT id, content, tags FROM passages").fetchall()
    conn.executemany(
        "UPDATE passages SET terms = ? WHERE id = ?",
        [(passage_terms(p["content"], p["tags"].split()), p["id"]) for p in passages],
    )
    conn.execute(
        "INSERT INTO passages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM passages"
    )


# Python steps that complete a SQL migration (keyed by its version), in the same transaction.
_AFTER_MIGRATION: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _index_existing_rows,
}
