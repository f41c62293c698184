"""PostgreSQL for the benchmarks: a server, and the synthetic histories of ``bench.dataset``.

The server is the one named by ``AGENTCORE_TEST_POSTGRES_URL`` (CI's), or else a cluster kept
in ``bench/.cache/postgres`` (PostgreSQL 15's defaults: fsync on), started for the run and
stopped after it. A history is the cached SQLite file of ``bench.dataset`` copied row for row
(same ids, terms, positions and counts), so both backends are measured on the same data; the
copy is kept on the server between runs under a name made of the SQLite file's and of the
PostgreSQL migrations' (a schema change makes a new copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg

from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.schema import migration_files
from bench.common import CACHE
from tests import postgres

BATCH = 50_000  # rows copied per COPY


@contextlib.contextmanager
def bench_server() -> Iterator[str]:
    """The URL of the server's maintenance database, for the duration of the run."""
    url = os.environ.get(postgres.URL_VARIABLE)
    if url:
        yield url
        return
    if not (postgres.BIN / "initdb").exists():
        raise postgres.Unavailable(f"no PostgreSQL 15 at {postgres.BIN}")
    with postgres.cluster(CACHE / "postgres") as started:
        yield started


def history_database(server: str, sqlite_path: Path) -> str:
    """The URL of the PostgreSQL copy of the history in ``sqlite_path``, made if needed."""
    schema = hashlib.sha256(
        "".join(m.script for m in migration_files("agentcore.storage.postgres")).encode()
    ).hexdigest()[:8]
    name = f"bench_{sqlite_path.stem.replace('-', '_')}_{schema}"
    url = postgres.database_url(server, name)
    if not asyncio.run(_exists(server, name)):
        started = time.perf_counter()
        asyncio.run(_copy(server, name, sqlite_path))
        print(f"copied {sqlite_path.name} to PostgreSQL in {time.perf_counter() - started:.1f}s")
    return url


@contextlib.asynccontextmanager
async def working_copy(
    server: str, url: str, *, synchronous_commit: str = "on"
) -> AsyncIterator[str]:
    """A copy of the database at ``url`` for a benchmark that writes; dropped afterwards."""
    name = f"{url.rsplit('/', 1)[1]}_work_{os.getpid()}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {url.rsplit('/', 1)[1]}")
        await conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = {synchronous_commit}")
    finally:
        await conn.close()
    try:
        yield postgres.database_url(server, name)
    finally:
        await postgres.drop_database(server, postgres.database_url(server, name))


async def prewarm(url: str) -> None:
    """Read every table and index once, as a server that has been running holds them."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        await conn.execute(
            "SELECT pg_prewarm(c.oid) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'i')"
        )
    finally:
        await conn.close()


async def vector_bytes(url: str) -> tuple[int, int]:
    """Bytes of the messages' vectors (the table with its indexes), and how many it holds."""
    conn = await asyncpg.connect(url)
    try:
        size = await conn.fetchval("SELECT pg_total_relation_size('message_vectors')")
        count = await conn.fetchval("SELECT count(*) FROM message_vectors")
    finally:
        await conn.close()
    return int(size), int(count)


async def _exists(server: str, name: str) -> bool:
    conn = await asyncpg.connect(server)
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return found is not None


# (table, columns, the column its rows are copied in order of): what a history holds, in an
# order the foreign keys accept.
TABLES = (
    (
        "agents",
        "id, platform, user_id, display_name, created_at, last_user_at, session_count, "
        "message_count, passage_count, context_start_id, summary_id, pressure_warned, "
        "search_docs, search_terms",
        "id",
    ),
    ("summaries", "id, agent_id, content, through_message_id, created_at", "id"),
    (
        "blocks",
        "id, agent_id, label, description, value, char_limit, read_only, version, updated_at",
        "id",
    ),
    (
        "messages",
        "id, agent_id, role, content, tool_calls, tool_call_id, created_at, terms, seq",
        "id",
    ),
    ("embedding_models", "id, name, dims", "id"),
    # In the messages' order, as the embedding worker stores them: everyone's interleaved.
    ("message_vectors", "agent_id, message_id, model_id, vector", "message_id"),
)
BOOLEAN = {"pressure_warned", "read_only"}


async def _copy(server: str, name: str, sqlite_path: Path) -> None:
    """Build the copy under a temporary name and rename it when complete."""
    partial = f"{name}_partial"
    await postgres.drop_database(server, postgres.database_url(server, partial))
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"CREATE DATABASE {partial}")
    finally:
        await conn.close()
    target = postgres.database_url(server, partial)
    await (await PostgresStorage.open(target)).close()  # the schema, by the real migrations
    source = sqlite3.connect(sqlite_path)
    conn = await asyncpg.connect(target)
    try:
        # The rows come with their counts and positions already: no triggers, no FK checks.
        await conn.execute("SET session_replication_role = replica")
        for table, columns, order in TABLES:
            await _copy_table(source, conn, table, columns, order)
            if order == "id":
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                )
        await conn.execute(
            "INSERT INTO messages_vocab (term, owners) SELECT t, count(DISTINCT agent_id) "
            "FROM messages, unnest(string_to_array(terms, ' ')) AS t WHERE terms IS NOT NULL "
            "GROUP BY t"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
        source.close()
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"ALTER DATABASE {partial} RENAME TO {name}")
    finally:
        await conn.close()


async def _copy_table(
    source: sqlite3.Connection, conn: asyncpg.Connection, table: str, columns: str, order: str
) -> None:
    names = [c.strip() for c in columns.split(",")]
    flags = [i for i, n in enumerate(names) if n in BOOLEAN]
    cursor = source.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")
    while batch := cursor.fetchmany(BATCH):
        records = [tuple(bool(v) if i in flags else v for i, v in enumerate(row)) for row in batch]
        await conn.copy_records_to_table(table, records=records, columns=names)
