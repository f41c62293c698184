"""The SQLite file and its two aiosqlite connections: a transaction is one async function.

A unit of work is an ``async def work(conn: aiosqlite.Connection) -> T`` that awaits its
statements one after another. ``await db.write(work)`` runs it on the writer between ``BEGIN
IMMEDIATE`` and ``COMMIT`` (or ``ROLLBACK`` if it raises or is cancelled) and returns what it
returns: its control flow is plain Python ("insert the blocks only if the agent was created") and
its results come back named, as the function builds them. ``await db.read(work)`` runs a read
the same way on the reader, in one read transaction, so several statements see one snapshot.
One statement needs no transaction (SQLite makes each atomic, with one snapshot, by itself):
``db.execute(sql, params)`` writes with one, ``db.fetch(sql, params)`` reads with one, each a
single round trip. WAL lets the reader run beside the writer (and beside other processes such
as the operator CLI).

Each connection is used by one task at a time (its lock): a transaction awaits its statements
one by one, and a statement another task sent meanwhile would run inside it (a write undone by
its rollback, a read seeing its old snapshot). aiosqlite runs each connection on its own
thread, so the event loop never blocks on the file, and a busy wait for another process's lock
blocks only that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from agentcore.search.meaning import QueryEmbedder
from agentcore.storage.protocols import StorageError
from agentcore.storage.sqlite.sql import Params

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[aiosqlite.Connection], Awaitable[T]]

_PRIVATE = 0o600
_COMPANIONS = ("", "-wal", "-shm")  # the database file and the files SQLite keeps beside it


class _Guarded:
    """One aiosqlite connection, lent to one task at a time."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._closed = False

    @asynccontextmanager
    async def use(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, once no other task is using it; sqlite3's errors come out of it as
        ``StorageError``."""
        async with self._lock:
            if self._closed:
                raise StorageError("the database is closed")
            with _as_storage_error():
                yield self._conn

    async def rows(self, sql: str, params: Params) -> list[sqlite3.Row]:
        """The rows of one statement, run on its own."""
        async with self.use() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def close(self) -> None:
        """Close the connection once the task using it is done; closing twice does nothing."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                await self._conn.close()
            except (sqlite3.Error, ValueError) as exc:  # the disk vanished, or closed already
                log.warning("closing database connection failed: %s", exc)


class Database:
    """One SQLite file: a writer connection and a reader connection. Build it with ``open``."""

    def __init__(self, path: str, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = _Guarded(writer)
        self._reader = _Guarded(reader)

    @classmethod
    async def open(cls, path: str, busy_timeout_ms: int, prepare: Work[None]) -> Database:
        """Open the file at ``path`` (created 0600; an existing one tightened to 0600), run
        ``prepare`` (the migrations) on the writer, then open the reader."""
        opened: list[aiosqlite.Connection] = []
        try:
            if path != ":memory:":
                await asyncio.to_thread(_private_file, Path(path))
            opened.append(await _connect(path, busy_timeout_ms))
            await prepare(opened[0])
            opened.append(await _connect(path, busy_timeout_ms))
        except BaseException as exc:
            for conn in opened:  # a connection's thread left running would keep the process up
                await conn.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StorageError(_describe(exc, path)) from exc
            raise
        return cls(path, opened[0], opened[1])

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` as one transaction on the writer: all of its statements or none."""
        async with self._writer.use() as conn:
            return await in_transaction(conn, "BEGIN IMMEDIATE", work)

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` on the reader, its statements in one read transaction (one snapshot)."""
        async with self._reader.use() as conn:
            return await in_transaction(conn, "BEGIN", work)

    async def execute(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """One write statement, and the rows it returns. SQLite makes each statement atomic by
        itself, so one needs no BEGIN and COMMIT (two round trips to the writer's thread)."""
        return await self._writer.rows(sql, params)

    async def fetch(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """The rows of one read statement (SQLite gives a statement one snapshot by itself)."""
        return await self._reader.rows(sql, params)

    async def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API), mode 0600."""
        try:
            await asyncio.to_thread(_private_file, destination)
            async with aiosqlite.connect(destination) as target, self._reader.use() as conn:
                await conn.backup(target)
        except (sqlite3.Error, OSError, StorageError) as exc:
            raise StorageError(f"backup to {destination} failed: {exc}") from exc

    async def close(self) -> None:
        """Close both connections once the transactions under way are done."""
        for conn in (self._writer, self._reader):
            await conn.close()


async def in_transaction(conn: aiosqlite.Connection, begin: str, work: Work[T]) -> T:
    """``work`` between ``begin`` and ``COMMIT``; rolled back if it raises or is cancelled."""
    try:
        await conn.execute(begin)
        result = await work(conn)
        await conn.execute("COMMIT")
    except BaseException:
        await _roll_back(conn)
        raise
    return result


async def _roll_back(conn: aiosqlite.Connection) -> None:
    """ROLLBACK, waited for even if this task is cancelled meanwhile: the connection must not
    pass to the next task with the transaction still open. A cancellation is passed on after."""
    rollback = asyncio.ensure_future(_rollback_quietly(conn))
    cancelled = False
    while not rollback.done():
        try:
            await asyncio.shield(rollback)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _rollback_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # never begun, or SQLite rolled back already (e.g. disk full)
        log.debug("rollback: %s", exc)


@contextlib.contextmanager
def _as_storage_error() -> Iterator[None]:
    """Translate sqlite3's errors into the core's one error type, keeping the cause."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"database error: {exc}") from exc


async def _connect(path: str, busy_timeout_ms: int) -> aiosqlite.Connection:
    # Autocommit mode: transactions are begun and ended explicitly (see in_transaction).
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        for pragma in (
            f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",  # durable across a process crash; fsync at checkpoints
            "PRAGMA foreign_keys = ON",
            "PRAGMA temp_store = MEMORY",
        ):
            await conn.execute(pragma)
    except BaseException:
        await conn.close()
        raise
    return conn


def _private_file(path: Path) -> None:
    """Create the file readable by its owner only (SQLite gives -wal/-shm the same mode). An
    existing file, and its -wal/-shm, that others may read or write is tightened to 0600; a
    read-only file stays read-only."""
    _usable_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    except FileExistsError:
        _tighten(path)
        return
    os.close(fd)


def _usable_folder(folder: Path) -> None:
    """Create the folder if needed; raise a ``PermissionError`` that names it if the database
    could not be created or written there (rather than the file SQLite then fails to open)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "the folder is not writable", str(folder))


def _tighten(path: Path) -> None:
    for companion in _COMPANIONS:
        name = Path(f"{path}{companion}")
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(name.stat().st_mode)
            if mode & 0o077:
                name.chmod(mode & 0o700)
                log.warning(
                    "%s was open to other users (mode %04o): now %04o", name, mode, mode & 0o700
                )


def _describe(exc: sqlite3.Error | OSError, path: str) -> str:
    """One line naming what is wrong with the database file or its folder."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return f"{exc} ({path})"


class Part:
    """One protocol's share of ``SQLiteStorage``: its methods, over the shared ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._meaning: QueryEmbedder | None = None  # set by ``search_by_meaning``
