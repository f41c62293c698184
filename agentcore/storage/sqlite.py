"""The SQLite backend (aiosqlite): one file, WAL mode, FTS5 search.

Writes go through one connection under one asyncio lock, each as a single ``BEGIN IMMEDIATE``
transaction, so concurrent turns never interleave a write. Reads use a second connection, which
WAL lets run beside the writer (and beside other processes such as the operator CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from agentcore.clock import from_millis, to_millis
from agentcore.messages import Role, ToolCall
from agentcore.search.query import parse_query
from agentcore.storage import sqlite_search
from agentcore.storage.base import (
    Actor,
    AgentRecord,
    AgentSummary,
    AuditEntry,
    Block,
    BlockSpec,
    BlockVersion,
    LLMCallRecord,
    NewMessage,
    Passage,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StorageError,
    StoredMessage,
    StoreStats,
    UserActivity,
    message_terms,
    passage_terms,
)
from agentcore.storage.migrate import load_migrations
from agentcore.types import AgentKey, ChatKind, InboundMessage

log = logging.getLogger(__name__)

_AGENT_COLUMNS = """a.id, a.platform, a.user_id, a.display_name, a.created_at, a.last_user_at,
    a.session_count, a.message_count, a.passage_count, a.context_start_id,
    COALESCE(s.content, ''), a.pressure_warned"""
_MESSAGE_COLUMNS = "id, role, content, created_at, tool_calls, tool_call_id"
_BLOCK_COLUMNS = "label, value, char_limit, description, read_only, version, updated_at"
_FAR_PAST, _FAR_FUTURE = -(2**62), 2**62


def _storage_error(exc: sqlite3.Error) -> StorageError:
    """Translate sqlite3's errors into the core's one error type, keeping the cause."""
    err = StorageError(f"database error: {exc}")
    err.__cause__ = exc
    return err


class SQLiteStorage:
    """``Storage`` on one SQLite file. Build it with ``await SQLiteStorage.open(path)``."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: str):
        self._writer = writer
        self._reader = reader
        self._path = path
        self._write_lock = asyncio.Lock()

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> SQLiteStorage:
        """Open (creating if needed, mode 0600) and migrate the database at ``path``."""
        path = str(path)
        if path != ":memory:":
            _create_private_file(Path(path))
        try:
            writer = await _connect(path, busy_timeout_ms)
            await _migrate(writer)
            reader = await _connect(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc
        return cls(writer, reader, path)

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            try:
                await conn.close()
            except (sqlite3.Error, ValueError) as exc:  # already closed, or the disk vanished
                log.warning("closing database connection failed: %s", exc)

    @property
    def path(self) -> str:
        return self._path

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error(exc) from exc
            try:
                yield self._writer
                await self._writer.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc) from exc
                raise

    async def _rollback(self) -> None:
        try:
            await self._writer.execute("ROLLBACK")
        except sqlite3.Error as exc:  # SQLite may already have rolled back (e.g. disk full)
            log.debug("rollback: %s", exc)

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc

    # ----------------------------------------------------------------- agents

    async def load_agent(self, key: AgentKey) -> AgentRecord | None:
        rows = await self._read(
            f"SELECT {_AGENT_COLUMNS} FROM agents a LEFT JOIN summaries s ON s.id = a.summary_id "
            "WHERE a.platform = ? AND a.user_id = ?",
            (key.platform, key.user_id),
        )
        return _agent(rows[0]) if rows else None

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord:
        ms = to_millis(now)
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO agents (platform, user_id, display_name, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (platform, user_id) DO NOTHING",
                (key.platform, key.user_id, display_name, ms),
            )
            if cursor.rowcount:
                await db.executemany(
                    "INSERT INTO blocks (agent_id, label, description, value, char_limit,"
                    " read_only, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            cursor.lastrowid,
                            b.label,
                            b.description,
                            b.value,
                            b.limit,
                            int(b.read_only),
                            ms,
                        )
                        for b in blocks
                    ],
                )
        agent = await self.load_agent(key)
        if agent is None:  # only possible if another process erased it in between
            raise StorageError(f"agent {key} vanished right after creation")
        return agent

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE agents SET pressure_warned = ? WHERE id = ?", (int(warned), agent_id)
            )

    async def fold_context(
        self, agent_id: int, summary: str, context_start_id: int, now: datetime
    ) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO summaries (agent_id, content, through_message_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                (agent_id, summary, context_start_id - 1, to_millis(now)),
            )
            await db.execute(
                "UPDATE agents SET summary_id = ?, context_start_id = ?, pressure_warned = 0 "
                "WHERE id = ?",
                (cursor.lastrowid, context_start_id, agent_id),
            )

    async def reset_context(self, agent_id: int, now: datetime) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE agents SET summary_id = NULL, pressure_warned = 0, context_start_id = "
                "(SELECT COALESCE(MAX(id), 0) + 1 FROM messages) WHERE id = ?",
                (agent_id,),
            )

    async def list_agents(self, limit: int) -> list[AgentSummary]:
        rows = await self._read(
            "SELECT a.platform, a.user_id, a.display_name, a.last_user_at, a.message_count, "
            "(SELECT COALESCE(SUM(LENGTH(value)), 0) FROM blocks b WHERE b.agent_id = a.id) "
            "FROM agents a ORDER BY a.last_user_at IS NULL, a.last_user_at DESC, a.id DESC "
            "LIMIT ?",
            (limit,),
        )
        return [
            AgentSummary(AgentKey(r[0], r[1]), r[2], _maybe_time(r[3]), r[4], r[5]) for r in rows
        ]

    async def delete_agent(self, agent_id: int) -> None:
        async with self._transaction() as db:
            # Explicit deletes (children first) so the FTS triggers see every row go.
            await db.execute("DELETE FROM messages WHERE agent_id = ?", (agent_id,))
            await db.execute("DELETE FROM passages WHERE agent_id = ?", (agent_id,))
            await db.execute("UPDATE agents SET summary_id = NULL WHERE id = ?", (agent_id,))
            await db.execute("DELETE FROM summaries WHERE agent_id = ?", (agent_id,))
            await db.execute(
                "DELETE FROM block_history WHERE block_id IN "
                "(SELECT id FROM blocks WHERE agent_id = ?)",
                (agent_id,),
            )
            await db.execute("DELETE FROM blocks WHERE agent_id = ?", (agent_id,))
            await db.execute("DELETE FROM llm_calls WHERE agent_id = ?", (agent_id,))
            await db.execute(
                "DELETE FROM inbox WHERE (platform, user_id) = "
                "(SELECT platform, user_id FROM agents WHERE id = ?)",
                (agent_id,),
            )
            await db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))

    # ----------------------------------------------------------------- blocks

    async def list_blocks(self, agent_id: int) -> list[Block]:
        rows = await self._read(
            f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE agent_id = ? ORDER BY id", (agent_id,)
        )
        return [_block(r) for r in rows]

    async def save_block(
        self, agent_id: int, label: str, value: str, actor: Actor, actor_name: str, now: datetime
    ) -> Block:
        ms = to_millis(now)
        async with self._transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT id, value, version FROM blocks WHERE agent_id = ? AND label = ?",
                    (agent_id, label),
                )
            )
            if not rows:
                raise KeyError(label)
            block_id, old_value, version = rows[0]
            await db.execute(
                "UPDATE blocks SET value = ?, version = ?, updated_at = ? WHERE id = ?",
                (value, version + 1, ms, block_id),
            )
            await db.execute(
                "INSERT INTO block_history (block_id, version, actor, actor_name, old_value,"
                " new_value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (block_id, version + 1, actor.value, actor_name, old_value, value, ms),
            )
            updated = list(
                await db.execute_fetchall(
                    f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE id = ?", (block_id,)
                )
            )
        return _block(updated[0])

    async def block_history(self, agent_id: int, label: str) -> list[BlockVersion]:
        rows = await self._read(
            "SELECT h.version, h.actor, h.actor_name, h.old_value, h.new_value, h.created_at "
            "FROM block_history h JOIN blocks b ON b.id = h.block_id "
            "WHERE b.agent_id = ? AND b.label = ? ORDER BY h.version",
            (agent_id, label),
        )
        return [BlockVersion(r[0], Actor(r[1]), r[2], r[3], r[4], from_millis(r[5])) for r in rows]

    async def list_shared_blocks(self) -> list[SharedBlock]:
        rows = await self._read(
            "SELECT label, value, updated_at, updated_by FROM shared_blocks ORDER BY label"
        )
        return [SharedBlock(r[0], r[1], from_millis(r[2]), r[3]) for r in rows]

    async def set_shared_block(self, label: str, value: str, by: str, now: datetime) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO shared_blocks (label, value, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (label) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (label, value, to_millis(now), by),
            )

    async def delete_shared_block(self, label: str) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM shared_blocks WHERE label = ?", (label,))
            return cursor.rowcount > 0

    # ----------------------------------------------------------------- messages

    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        async with self._transaction() as db:
            return await _insert_messages(db, agent_id, messages, activity)

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE agent_id = ? AND id >= ? ORDER BY id",
            (agent_id, since_id),
        )
        return [_message(r) for r in rows]

    async def all_messages(self, agent_id: int) -> list[StoredMessage]:
        return await self.context_messages(agent_id, 0)

    async def search_messages(
        self,
        agent_id: int,
        query: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        lo, hi = _bounds(start, end)
        parsed = parse_query(query)
        if parsed.empty:
            return await self._messages_in_range(agent_id, lo, hi, limit, bool(start or end))
        try:
            found = await sqlite_search.search_messages(
                self._reader_rows, agent_id, parsed, lo, hi, limit
            )
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc
        return [
            SearchHit(f.row[0], Role(f.row[1]), f.row[2], from_millis(f.row[3]), f.score)
            for f in found
        ]

    async def _reader_rows(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        return list(await self._reader.execute_fetchall(sql, params))

    async def _messages_in_range(
        self, agent_id: int, lo: int, hi: int, limit: int, has_range: bool
    ) -> list[SearchHit]:
        """With no searchable words, a date range alone lists that period's messages."""
        if not has_range:
            return []
        rows = await self._read(
            "SELECT id, role, content, created_at FROM messages WHERE agent_id = ? "
            "AND terms IS NOT NULL AND created_at BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
            (agent_id, lo, hi, limit),
        )
        return [SearchHit(r[0], Role(r[1]), r[2], from_millis(r[3])) for r in rows]

    # ----------------------------------------------------------------- inbox

    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO inbox (platform, user_id, display_name, chat, text, sent_at, route,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.key.platform,
                    message.key.user_id,
                    message.display_name,
                    message.chat.value,
                    message.text,
                    to_millis(message.sent_at),
                    message.route,
                    to_millis(received_at),
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def claim_pending(
        self, pending_id: int, agent_id: int, message: NewMessage, activity: UserActivity
    ) -> int | None:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM inbox WHERE id = ?", (pending_id,))
            if not cursor.rowcount:
                return None
            [message_id] = await _insert_messages(db, agent_id, [message], activity)
        return message_id

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        rows = await self._read(
            "SELECT id, platform, user_id, display_name, chat, text, sent_at, route, received_at "
            "FROM inbox WHERE ? IS NULL OR platform = ? ORDER BY id",
            (platform, platform),
        )
        return [
            PendingMessage(
                r[0],
                InboundMessage(
                    AgentKey(r[1], r[2]), r[5], from_millis(r[6]), r[3], ChatKind(r[4]), r[7]
                ),
                from_millis(r[8]),
            )
            for r in rows
        ]

    # ----------------------------------------------------------------- passages

    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO passages (agent_id, content, tags, terms, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (agent_id, content, " ".join(tags), passage_terms(content, tags), to_millis(now)),
            )
            await db.execute(
                "UPDATE agents SET passage_count = passage_count + 1 WHERE id = ?", (agent_id,)
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def search_passages(self, agent_id: int, query: str, limit: int = 10) -> list[Passage]:
        parsed = parse_query(query)
        if parsed.empty:
            return []
        try:
            found = await sqlite_search.search_passages(self._reader_rows, agent_id, parsed, limit)
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc
        return [
            Passage(r[0], r[1], tuple(r[2].split()), from_millis(r[3]), f.score)
            for f in found
            for r in (f.row,)
        ]

    async def all_passages(self, agent_id: int) -> list[Passage]:
        rows = await self._read(
            "SELECT id, content, tags, created_at FROM passages WHERE agent_id = ? ORDER BY id",
            (agent_id,),
        )
        return [Passage(r[0], r[1], tuple(r[2].split()), from_millis(r[3])) for r in rows]

    # ----------------------------------------------------------------- operations

    async def record_startup(self, run: StartupRun) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO startup_runs (started_at, total_ms, rss_mb, phases) "
                "VALUES (?, ?, ?, ?)",
                (to_millis(run.started_at), run.total_ms, run.rss_mb, json.dumps(run.phases)),
            )

    async def recent_startups(self, limit: int) -> list[StartupRun]:
        rows = await self._read(
            "SELECT id, started_at, total_ms, rss_mb, phases FROM startup_runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            StartupRun(
                from_millis(r[1]),
                r[2],
                r[3],
                tuple((n, float(ms)) for n, ms in json.loads(r[4])),
                id=r[0],
            )
            for r in rows
        ]

    async def record_llm_call(self, call: LLMCallRecord) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO llm_calls (agent_id, created_at, latency_ms, ok, prompt_tokens,"
                " completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    call.agent_id,
                    to_millis(call.created_at),
                    call.latency_ms,
                    int(call.ok),
                    call.prompt_tokens,
                    call.completion_tokens,
                ),
            )

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO audit_log (actor, verb, target, detail, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (entry.actor, entry.verb, entry.target, entry.detail, to_millis(entry.created_at)),
            )

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        rows = await self._read(
            "SELECT id, actor, verb, target, detail, created_at FROM audit_log "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [AuditEntry(r[1], r[2], r[3], from_millis(r[5]), r[4], id=r[0]) for r in rows]

    async def stats(self, since: datetime) -> StoreStats:
        counts = await self._read(
            "SELECT (SELECT COUNT(*) FROM agents), (SELECT COALESCE(SUM(message_count), 0) "
            "FROM agents), (SELECT COALESCE(SUM(passage_count), 0) FROM agents)"
        )
        calls = await self._read(
            "SELECT latency_ms, prompt_tokens + completion_tokens FROM llm_calls "
            "WHERE created_at >= ?",
            (to_millis(since),),
        )
        agents, messages, passages = counts[0]
        return StoreStats(
            agents=agents,
            messages=messages,
            passages=passages,
            size_bytes=_file_size(self._path),
            llm_calls_today=len(calls),
            tokens_today=sum(r[1] for r in calls),
            llm_latencies_ms=tuple(r[0] for r in calls),
        )


# --------------------------------------------------------------------- helpers


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives -wal/-shm the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


async def _connect(path: str, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    for pragma in (
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",  # durable across a process crash; fsync at checkpoints
        "PRAGMA foreign_keys = ON",
        "PRAGMA temp_store = MEMORY",
    ):
        await conn.execute(pragma)
    return conn


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply the migrations this file has not seen yet, each in its own transaction."""
    migrations = load_migrations()
    (version,) = (await db.execute_fetchall("PRAGMA user_version"))[0]  # type: ignore[index]
    if version >= len(migrations):
        return  # the common case: nothing to do, one cheap read
    await db.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        (version,) = (await db.execute_fetchall("PRAGMA user_version"))[0]  # type: ignore[index]
        for migration in migrations[version:]:
            log.info("applying database migration %s", migration.name)
            for statement in migration.statements:
                await db.execute(statement)
            after = _AFTER_MIGRATION.get(migration.version)
            if after is not None:
                await after(db)
            await db.execute(f"PRAGMA user_version = {migration.version}")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


_BACKFILL_BATCH = 5000


async def _index_existing_rows(db: aiosqlite.Connection) -> None:
    """Migration 2: give rows stored before it their search terms and positions, and index them.

    Runs once, inside the migration's transaction, in batches so memory stays flat.
    """
    per_agent: dict[int, list[int]] = {}  # agent id → [searchable rows, their terms]
    last_id = 0
    while True:
        rows = list(
            await db.execute_fetchall(
                "SELECT id, agent_id, role, content FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, _BACKFILL_BATCH),
            )
        )
        if not rows:
            break
        updates = []
        for message_id, agent_id, role, content in rows:
            terms = message_terms(Role(role), content)
            if terms is not None:
                counts = per_agent.setdefault(agent_id, [0, 0])
                updates.append((terms, counts[0], message_id))
                counts[0] += 1
                counts[1] += len(terms.split())
        await db.executemany("UPDATE messages SET terms = ?, seq = ? WHERE id = ?", updates)
        last_id = rows[-1][0]
    await db.executemany(
        "UPDATE agents SET search_docs = ?, search_terms = ? WHERE id = ?",
        [(docs, terms, agent_id) for agent_id, (docs, terms) in per_agent.items()],
    )
    await db.execute(
        "INSERT INTO messages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM messages WHERE terms IS NOT NULL"
    )
    passages = list(await db.execute_fetchall("SELECT id, content, tags FROM passages"))
    await db.executemany(
        "UPDATE passages SET terms = ? WHERE id = ?",
        [(passage_terms(content, tags.split()), pid) for pid, content, tags in passages],
    )
    await db.execute(
        "INSERT INTO passages_fts (rowid, agent_id, terms) "
        "SELECT id, '_' || agent_id, terms FROM passages"
    )


# Python steps that complete a SQL migration (keyed by its version), in the same transaction.
_AFTER_MIGRATION: dict[int, Callable[[aiosqlite.Connection], Awaitable[None]]] = {
    2: _index_existing_rows,
}


async def _insert_messages(
    db: aiosqlite.Connection,
    agent_id: int,
    messages: Sequence[NewMessage],
    activity: UserActivity | None,
) -> list[int]:
    """Insert rows and bump the agent's counters; the caller holds the transaction."""
    counted = list(
        await db.execute_fetchall("SELECT search_docs FROM agents WHERE id = ?", (agent_id,))
    )
    next_seq = counted[0][0] if counted else 0
    ids, searchable, term_count = [], 0, 0
    for m in messages:
        terms = message_terms(m.role, m.content)
        seq = None if terms is None else next_seq + searchable
        if terms is not None:
            searchable += 1
            term_count += len(terms.split())
        cursor = await db.execute(
            "INSERT INTO messages (agent_id, role, content, tool_calls, tool_call_id, created_at,"
            " terms, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agent_id,
                m.role.value,
                m.content,
                _dump_calls(m.tool_calls),
                m.tool_call_id,
                to_millis(m.created_at),
                terms,
                seq,
            ),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
    await db.execute(*_count_update(agent_id, len(messages), searchable, term_count, activity))
    return ids


def _count_update(
    agent_id: int, added: int, searchable: int, terms: int, activity: UserActivity | None
) -> tuple[str, tuple[Any, ...]]:
    counts = (
        "message_count = message_count + ?, search_docs = search_docs + ?, "
        "search_terms = search_terms + ?"
    )
    if activity is None:
        return (f"UPDATE agents SET {counts} WHERE id = ?", (added, searchable, terms, agent_id))
    return (
        f"UPDATE agents SET {counts}, last_user_at = ?, session_count = ?, display_name = ? "
        "WHERE id = ?",
        (
            added,
            searchable,
            terms,
            to_millis(activity.sent_at),
            activity.session_count,
            activity.display_name,
            agent_id,
        ),
    )


def _bounds(start: datetime | None, end: datetime | None) -> tuple[int, int]:
    return (
        to_millis(start) if start else _FAR_PAST,
        to_millis(end) if end else _FAR_FUTURE,
    )


def _maybe_time(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def _agent(r: sqlite3.Row) -> AgentRecord:
    return AgentRecord(
        id=r[0],
        key=AgentKey(r[1], r[2]),
        display_name=r[3],
        created_at=from_millis(r[4]),
        last_user_at=_maybe_time(r[5]),
        session_count=r[6],
        message_count=r[7],
        passage_count=r[8],
        context_start_id=r[9],
        summary=r[10],
        pressure_warned=bool(r[11]),
    )


def _block(r: sqlite3.Row) -> Block:
    return Block(r[0], r[1], r[2], r[3], bool(r[4]), r[5], from_millis(r[6]))


def _dump_calls(calls: Iterable[ToolCall]) -> str | None:
    payload = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return json.dumps(payload) if payload else None


def _load_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in json.loads(text))


def _message(r: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=r[0],
        role=Role(r[1]),
        content=r[2],
        created_at=from_millis(r[3]),
        tool_calls=_load_calls(r[4]),
        tool_call_id=r[5],
    )


def _file_size(path: str) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.path.getsize(path + suffix)
    return total
