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
from agentcore.search.fts import scoped
from agentcore.search.query import parse_query
from agentcore.storage import sqlite_search
from agentcore.storage.base import (
    Actor,
    AgentRecord,
    AgentSnapshot,
    AgentSummary,
    AuditEntry,
    Block,
    BlockSpec,
    BlockVersion,
    LLMCallRecord,
    NewAgent,
    NewMessage,
    Passage,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    Storage,
    StorageError,
    StoredMessage,
    StoreStats,
    TurnState,
    UserActivity,
    message_terms,
    passage_terms,
)
from agentcore.storage.migrate import load_migrations
from agentcore.storage.sqlite_reminders import SQLiteReminders
from agentcore.types import AgentKey, ChatKind, InboundMessage

log = logging.getLogger(__name__)

_AGENT_COLUMNS = """a.id, a.platform, a.user_id, a.display_name, a.created_at, a.last_user_at,
    a.session_count, a.message_count, a.passage_count, a.context_start_id,
    COALESCE(s.content, ''), a.pressure_warned"""
_MESSAGE_COLUMNS = "id, role, content, created_at, tool_calls, tool_call_id"
_BLOCK_COLUMNS = "label, value, char_limit, description, read_only, version, updated_at"
_FAR_PAST, _FAR_FUTURE = -(2**62), 2**62
Statement = tuple[str, Sequence[Any]]
# Followed by the agent (``?`` or a subquery): a person's latest message and session.
_SET_ACTIVITY = (
    "UPDATE agents SET last_user_at = ?, session_count = ?, display_name = ? WHERE id = "
)
_ROWS_PER_INSERT = 1000  # 7 parameters a row, well under SQLite's variable limit


def _storage_error(exc: sqlite3.Error) -> StorageError:
    """Translate sqlite3's errors into the core's one error type, keeping the cause."""
    err = StorageError(f"database error: {exc}")
    err.__cause__ = exc
    return err


class SQLiteStorage(SQLiteReminders):
    """``Storage`` (and ``ReminderStore``) on one SQLite file. Build it with
    ``await SQLiteStorage.open(path)``."""

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
        connections: list[aiosqlite.Connection] = []
        try:
            if path != ":memory:":
                await asyncio.to_thread(_create_private_file, Path(path))
            connections.append(await _connect(path, busy_timeout_ms))
            await _migrate(connections[0])
            connections.append(await _connect(path, busy_timeout_ms))
        except (sqlite3.Error, OSError) as exc:
            for conn in connections:  # a live connection thread would keep the process alive
                await conn.close()
            raise StorageError(str(exc)) from exc
        return cls(connections[0], connections[1], path)

    async def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API), mode 0600."""
        try:
            await asyncio.to_thread(_create_private_file, destination)
            async with aiosqlite.connect(destination) as target:
                await self._reader.backup(target)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"backup to {destination} failed: {exc}") from exc

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

    async def _pipeline(self, statements: Sequence[Statement]) -> list[list[sqlite3.Row]]:
        """Run ``statements`` as one transaction, queued to the writer thread together.

        Each aiosqlite call is a round trip to its thread; queued together the statements run
        back to back, so a transaction costs three round trips (BEGIN, the statements, COMMIT)
        however many statements it has. BEGIN is awaited on its own: if it failed, nothing may
        run outside a transaction. COMMIT is sent only if every statement succeeded.
        """
        async with self._transaction() as db:
            results = await asyncio.gather(
                *(db.execute_fetchall(sql, params) for sql, params in statements),
                return_exceptions=True,
            )
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                raise failed
        return [list(rows) for rows in results if not isinstance(rows, BaseException)]

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One statement on its own: SQLite makes it atomic, so no BEGIN/COMMIT round trips.

        The write lock is held only until the statement is queued to the writer thread (so it
        can never land inside another task's transaction); single statements from concurrent
        tasks then run back to back instead of each waiting for the last one's round trip.
        """
        async with self._write_lock:
            queued = asyncio.ensure_future(self._writer.execute_fetchall(sql, params))
            await asyncio.sleep(0)  # one loop step: the task hands the statement to the thread
        try:
            return list(await queued)
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc

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

    async def load_turn(self, key: AgentKey) -> TurnState | None:
        # Four reads issued together: the reader thread runs them back to back, so the turn
        # waits about one round trip instead of four.
        agent, blocks, shared, context = await asyncio.gather(
            self.load_agent(key),
            self._read(
                f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE agent_id = "
                "(SELECT id FROM agents WHERE platform = ? AND user_id = ?) ORDER BY id",
                (key.platform, key.user_id),
            ),
            self.list_shared_blocks(),
            self._read(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE agent_id = "
                "(SELECT id FROM agents WHERE platform = ? AND user_id = ?) AND id >= "
                "(SELECT context_start_id FROM agents WHERE platform = ? AND user_id = ?) "
                "ORDER BY id",
                (key.platform, key.user_id, key.platform, key.user_id),
            ),
        )
        if agent is None:
            return None
        return TurnState(agent, [_block(r) for r in blocks], shared, [_message(r) for r in context])

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord | None:
        ms = to_millis(now)
        created, _ = await self._pipeline(_creation(key, display_name, ms, blocks))
        if not created:
            return None
        return AgentRecord.fresh(created[0][0], key, display_name, from_millis(ms))

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None:
        await self._write(
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
        await self._write(
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
            # Overwrite freed pages with zeros, so erased text does not linger in the file.
            await db.execute("PRAGMA secure_delete = ON")
            try:
                await _delete_agent_rows(db, agent_id)
            finally:
                await db.execute("PRAGMA secure_delete = OFF")

    async def replace_agent(
        self, key: AgentKey, snapshot: AgentSnapshot, now: datetime
    ) -> AgentRecord:
        async with self._transaction() as db:
            existing = list(
                await db.execute_fetchall(
                    "SELECT id FROM agents WHERE platform = ? AND user_id = ?",
                    (key.platform, key.user_id),
                )
            )
            if existing:
                await _delete_agent_rows(db, existing[0][0], redact_audit=False)
            await _insert_snapshot(db, key, snapshot, to_millis(now))
        agent = await self.load_agent(key)
        if agent is None:
            raise StorageError(f"agent {key} vanished right after import")
        return agent

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
        await self._write(
            "INSERT INTO shared_blocks (label, value, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (label) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (label, value, to_millis(now), by),
        )

    async def delete_shared_block(self, label: str) -> bool:
        deleted = await self._write(
            "DELETE FROM shared_blocks WHERE label = ? RETURNING label", (label,)
        )
        return bool(deleted)

    # ----------------------------------------------------------------- messages

    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        if activity is None:  # one multi-row INSERT is atomic by itself
            async with self._write_lock:
                try:
                    return await _insert_messages(self._writer, agent_id, messages)
                except sqlite3.Error as exc:
                    raise _storage_error(exc) from exc
        async with self._transaction() as db:
            ids = await _insert_messages(db, agent_id, messages)
            await db.execute(*_activity_update(agent_id, activity))
        return ids

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE agent_id = ? AND id >= ? ORDER BY id",
            (agent_id, since_id),
        )
        return [_message(r) for r in rows]

    async def recent_matches(self, agent_id: int, query: str, limit: int) -> list[SearchHit]:
        parsed = parse_query(query)
        if parsed.empty:
            return []
        rows = await self._read(
            "SELECT m.id, m.role, m.content, m.created_at FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? "
            "ORDER BY messages_fts.rowid DESC LIMIT ?",
            (scoped("agent_id", agent_id, "terms", parsed.terms), limit),
        )
        return [SearchHit(r[0], Role(r[1]), r[2], from_millis(r[3])) for r in rows]

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
        if parsed.empty:  # a date range alone lists that period's messages
            has_range = start is not None or end is not None
            return await self._messages_in_range(agent_id, lo, hi, limit) if has_range else []
        found = await sqlite_search.search_messages(self._read, agent_id, parsed, lo, hi, limit)
        return [
            SearchHit(f.row[0], Role(f.row[1]), f.row[2], from_millis(f.row[3]), f.score)
            for f in found
        ]

    async def _messages_in_range(
        self, agent_id: int, lo: int, hi: int, limit: int
    ) -> list[SearchHit]:
        rows = await self._read(
            "SELECT id, role, content, created_at FROM messages WHERE agent_id = ? "
            "AND terms IS NOT NULL AND created_at BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
            (agent_id, lo, hi, limit),
        )
        return [SearchHit(r[0], Role(r[1]), r[2], from_millis(r[3])) for r in rows]

    # ----------------------------------------------------------------- inbox

    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        stored = await self._write(
            "INSERT INTO inbox (platform, user_id, display_name, chat, text, sent_at, route,"
            " received_at, source, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, source) WHERE source IS NOT NULL DO NOTHING RETURNING id",
            (
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
            ),
        )
        return int(stored[0][0]) if stored else None

    async def claim_pending(
        self, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
    ) -> list[StoredMessage]:
        rows, _, _ = await self._pipeline(
            _claim(key, up_to_id, ("?", (agent_id,)), activity, after_creation=False)
        )
        return _claimed(rows)

    async def start_agent(
        self,
        key: AgentKey,
        up_to_id: int,
        agent: NewAgent,
        activity: UserActivity,
    ) -> tuple[AgentRecord, list[StoredMessage]] | None:
        ms = to_millis(agent.created_at)
        owner = (
            "(SELECT id FROM agents WHERE platform = ? AND user_id = ?)",
            (key.platform, key.user_id),
        )
        created, _, rows, _, _ = await self._pipeline(
            [
                *_creation(key, agent.display_name, ms, agent.blocks),
                *_claim(key, up_to_id, owner, activity, after_creation=True),
            ]
        )
        if not created:
            return None
        record = AgentRecord.fresh(created[0][0], key, agent.display_name, from_millis(ms))
        return record, _claimed(rows)

    async def count_pending(self, key: AgentKey) -> int:
        [(count,)] = await self._read(
            "SELECT COUNT(*) FROM inbox WHERE platform = ? AND user_id = ? AND NOT claimed",
            (key.platform, key.user_id),
        )
        return int(count)

    async def prune_inbox(self, before: datetime) -> int:
        pruned = await self._write(
            "DELETE FROM inbox WHERE claimed AND received_at < ? RETURNING id",
            (to_millis(before),),
        )
        return len(pruned)

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        rows = await self._read(
            "SELECT id, platform, user_id, display_name, chat, text, sent_at, route, received_at, "
            "COALESCE(source, '') FROM inbox WHERE NOT claimed AND (? IS NULL OR platform = ?) "
            "ORDER BY id",
            (platform, platform),
        )
        return [
            PendingMessage(
                r[0],
                InboundMessage(
                    AgentKey(r[1], r[2]),
                    r[5],
                    from_millis(r[6]),
                    r[3],
                    ChatKind(r[4]),
                    route=r[7],
                    source=r[9],
                ),
                from_millis(r[8]),
            )
            for r in rows
        ]

    # ----------------------------------------------------------------- passages

    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        [(passage_id,)] = await self._write(
            "INSERT INTO passages (agent_id, content, tags, terms, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (agent_id, content, " ".join(tags), passage_terms(content, tags), to_millis(now)),
        )
        return int(passage_id)

    async def search_passages(self, agent_id: int, query: str, limit: int = 10) -> list[Passage]:
        parsed = parse_query(query)
        if parsed.empty:
            return []
        found = await sqlite_search.search_passages(self._read, agent_id, parsed, limit)
        return [_passage(f.row, f.score) for f in found]

    async def all_passages(self, agent_id: int) -> list[Passage]:
        rows = await self._read(
            "SELECT id, content, tags, created_at FROM passages WHERE agent_id = ? ORDER BY id",
            (agent_id,),
        )
        return [_passage(r) for r in rows]

    # ----------------------------------------------------------------- operations

    async def record_startup(self, run: StartupRun) -> None:
        await self._write(
            "INSERT INTO startup_runs (started_at, total_ms, rss_mb, phases) VALUES (?, ?, ?, ?)",
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
        await self._write(
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
        await self._write(
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
    """Create the file readable by its owner only (SQLite gives -wal/-shm the same mode); an
    existing file is left as it is, even if it is read-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


async def _connect(path: str, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in (
            f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",  # durable across a process crash; fsync at checkpoints
            "PRAGMA foreign_keys = ON",
            "PRAGMA temp_store = MEMORY",
        ):
            await conn.execute(pragma)
    except BaseException:
        await conn.close()  # its worker thread would otherwise keep the process alive
        raise
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


async def _delete_agent_rows(
    db: aiosqlite.Connection, agent_id: int, *, redact_audit: bool = True
) -> None:
    """Every row of one agent, children first so the FTS triggers see each row go."""
    for sql in (
        "DELETE FROM messages WHERE agent_id = ?",
        "DELETE FROM passages WHERE agent_id = ?",
        "UPDATE agents SET summary_id = NULL WHERE id = ?",
        "DELETE FROM summaries WHERE agent_id = ?",
        "DELETE FROM block_history WHERE block_id IN (SELECT id FROM blocks WHERE agent_id = ?)",
        "DELETE FROM blocks WHERE agent_id = ?",
        "DELETE FROM llm_calls WHERE agent_id = ?",
        "DELETE FROM inbox WHERE (platform, user_id) = "
        "(SELECT platform, user_id FROM agents WHERE id = ?)",
    ):
        await db.execute(sql, (agent_id,))
    if redact_audit:
        await db.execute(
            "UPDATE audit_log SET target = (SELECT platform FROM agents WHERE id = ?) || "
            "':(erased)' WHERE target = (SELECT platform || ':' || user_id FROM agents "
            "WHERE id = ?)",
            (agent_id, agent_id),
        )
    await db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))


async def _insert_snapshot(
    db: aiosqlite.Connection, key: AgentKey, snapshot: AgentSnapshot, ms: int
) -> None:
    [(agent_id,)] = await db.execute_fetchall(
        "INSERT INTO agents (platform, user_id, display_name, created_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        (key.platform, key.user_id, snapshot.display_name, ms),
    )
    await db.executemany(
        "INSERT INTO blocks (agent_id, label, description, value, char_limit, read_only,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (agent_id, b.label, b.description, b.value, b.limit, int(b.read_only), ms)
            for b in snapshot.blocks
        ],
    )
    ids: list[int] = []
    for start in range(0, len(snapshot.messages), _ROWS_PER_INSERT):
        chunk = snapshot.messages[start : start + _ROWS_PER_INSERT]
        ids += await _insert_messages(db, agent_id, chunk)
    await db.executemany(
        "INSERT INTO passages (agent_id, content, tags, terms, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (
                agent_id,
                p.content,
                " ".join(p.tags),
                passage_terms(p.content, p.tags),
                to_millis(p.created_at),
            )
            for p in snapshot.passages
        ],
    )
    await _set_imported_window(db, agent_id, snapshot, ids, ms)


async def _set_imported_window(
    db: aiosqlite.Connection, agent_id: int, snapshot: AgentSnapshot, ids: list[int], ms: int
) -> None:
    """Start the context window at the snapshot's in-context messages, under its summary."""
    in_context = ids[len(ids) - snapshot.in_context :] if snapshot.in_context else []
    start = in_context[0] if in_context else (ids[-1] + 1 if ids else 0)
    last_user = [m.created_at for m in snapshot.messages if m.role is Role.USER]
    await db.execute(
        "UPDATE agents SET context_start_id = ?, last_user_at = ?, session_count = ? WHERE id = ?",
        (start, to_millis(last_user[-1]) if last_user else None, 1 if last_user else 0, agent_id),
    )
    if snapshot.summary:
        await db.execute(
            "INSERT INTO summaries (agent_id, content, through_message_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (agent_id, snapshot.summary, start - 1, ms),
        )
        await db.execute(
            "UPDATE agents SET summary_id = last_insert_rowid() WHERE id = ?", (agent_id,)
        )


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
    db: aiosqlite.Connection, agent_id: int, messages: Sequence[NewMessage]
) -> list[int]:
    """Insert rows in one statement and return their ids in order. Each row carries its search
    terms; triggers keep the agent's counts and each searchable row's position (``seq``)."""
    placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(messages))
    params: list[Any] = []
    for m in messages:
        params += [
            agent_id,
            m.role.value,
            m.content,
            _dump_calls(m.tool_calls),
            m.tool_call_id,
            to_millis(m.created_at),
            message_terms(m.role, m.content),
        ]
    rows = await db.execute_fetchall(
        "INSERT INTO messages (agent_id, role, content, tool_calls, tool_call_id, created_at,"
        f" terms) VALUES {placeholders} RETURNING id",
        params,
    )
    # RETURNING order is unspecified; rowids are handed out in VALUES order.
    return sorted(int(r[0]) for r in rows)


def _creation(
    key: AgentKey, display_name: str, ms: int, blocks: Sequence[BlockSpec]
) -> list[Statement]:
    """The statements that create an agent and its blocks; the blocks only if the agent was
    created just now (``changes()`` is 0 when it existed already)."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * len(blocks))
    agent: Statement = (
        "INSERT INTO agents (platform, user_id, display_name, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (platform, user_id) DO NOTHING RETURNING id",
        (key.platform, key.user_id, display_name, ms),
    )
    if not blocks:
        return [agent, ("SELECT 0", ())]  # a SELECT leaves changes() as the INSERT set it
    return [
        agent,
        (
            "INSERT INTO blocks (agent_id, label, description, value, char_limit, read_only,"
            " updated_at) SELECT a.id, v.column1, v.column2, v.column3, v.column4, v.column5, ?"
            f" FROM agents a, (VALUES {values}) v"
            " WHERE a.platform = ? AND a.user_id = ? AND changes() > 0",
            (
                ms,
                *(
                    x
                    for b in blocks
                    for x in (b.label, b.description, b.value, b.limit, int(b.read_only))
                ),
                key.platform,
                key.user_id,
            ),
        ),
    ]


def _claimed(rows: Sequence[sqlite3.Row]) -> list[StoredMessage]:
    # RETURNING order is unspecified; rowids follow the ORDER BY.
    return [
        StoredMessage(r[0], Role.USER, r[1], from_millis(r[2]))
        for r in sorted(rows, key=lambda r: int(r[0]))
    ]


def _claim(
    key: AgentKey,
    up_to_id: int,
    agent: tuple[str, Sequence[Any]],
    activity: UserActivity,
    *,
    after_creation: bool,
) -> list[Statement]:
    """Move this person's waiting messages (up to ``up_to_id``) into the agent's recall and
    record their activity. ``agent`` is the SQL naming the agent and its parameters. Each
    statement runs only if the one before changed something (``changes()``): nothing is
    claimed if the agent was not created just now (``after_creation``), and the activity is
    recorded only if a message was taken up (none left means it was answered already)."""
    agent_sql, agent_params = agent
    mine = "platform = ? AND user_id = ? AND id <= ? AND NOT claimed"
    params = (key.platform, key.user_id, up_to_id)
    chained = " AND changes() > 0" if after_creation else ""
    return [
        (
            "INSERT INTO messages (agent_id, role, content, created_at, terms) "
            f"SELECT {agent_sql}, 'user', text, sent_at, terms FROM inbox "
            f"WHERE {mine}{chained} ORDER BY id RETURNING id, content, created_at",
            (*agent_params, *params),
        ),
        # The text now lives in recall; the row stays a while to recognise redeliveries.
        (f"UPDATE inbox SET claimed = 1, text = '', terms = NULL WHERE {mine}{chained}", params),
        (
            f"{_SET_ACTIVITY}{agent_sql} AND changes() > 0",
            (*_activity_params(activity), *agent_params),
        ),
    ]


def _activity_params(activity: UserActivity) -> tuple[int, int, str]:
    return (to_millis(activity.sent_at), activity.session_count, activity.display_name)


def _activity_update(agent_id: int, activity: UserActivity) -> Statement:
    return f"{_SET_ACTIVITY}?", (*_activity_params(activity), agent_id)


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


def _passage(r: sqlite3.Row, score: float = 0.0) -> Passage:
    return Passage(r[0], r[1], tuple(r[2].split()), from_millis(r[3]), score)


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


def _conforms(store: SQLiteStorage) -> Storage:  # mypy checks the backend against the protocol
    return store
