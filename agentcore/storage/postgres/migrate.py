"""Forward-only SQL migrations (``migrations/NNNN_name.sql``), recorded in ``schema_migrations``.

Several bot processes may start together on one database: the migrations run in one transaction
under a transaction-level advisory lock, so one process applies them and the others wait, then
find nothing left to do.
"""

from __future__ import annotations

import logging
import time

from agentcore.storage.postgres.connection import Conn
from agentcore.storage.protocols import StorageError
from agentcore.storage.schema import migration_files

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: the first 8 bytes of sha256("agentcore migrations"), as a bigint.
MIGRATION_LOCK = 0x38D1_8A68_176E_D594


async def migrate(conn: Conn) -> None:
    """Apply the migrations this database has not seen yet; refuse a newer schema."""
    migrations = migration_files(__package__ or "agentcore.storage.postgres")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at bigint NOT NULL)"
        )
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if current > len(migrations):
            raise StorageError(
                f"the database's schema is version {current}, newer than this program's "
                f"({len(migrations)}): run the newer version of the bot, or another database"
            )
        for migration in migrations[current:]:
            log.info("applying database migration %s", migration.name)
            await conn.execute(migration.script)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                int(time.time() * 1000),
            )
