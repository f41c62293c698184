"""The SQLite file and its two connections: every transaction is one function run on its thread.

A unit of work is a plain function of a ``sqlite3.Connection``: ``await db.write(work)`` runs
it on the writer's own thread between ``BEGIN IMMEDIATE`` and ``COMMIT`` (or rolls it back if
it raises), and returns what it returns. So a transaction is one await, its statements run back
to back with nothing from another task between them, its control flow is plain Python ("insert
the blocks only if the agent was created"), and its results come back named, as the function
builds them. ``await db.read(work)`` runs a read the same way on the reader's thread, in one
read transaction, so several statements see one snapshot; WAL lets it run beside the writer
(and beside other processes such as the operator CLI).

Each connection is used from exactly one thread (a single-worker executor), which is how
``sqlite3`` connections are meant to be shared with asyncio: the event loop never blocks on the
file, and a busy wait for another process's lock blocks only that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from agentcore.storage.protocols import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

_PRIVATE = 0o600
_COMPANIONS = ("", "-wal", "-shm")  # the database file and the files SQLite keeps beside it


class _Owned:
    """One ``sqlite3`` connection and the one thread that uses it."""

    def __init__(self, conn: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._thread = thread
        self._closed = False

    @classmethod
    async def connect(cls, path: str, busy_timeout_ms: int, name: str) -> _Owned:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(
                thread, _connect, path, busy_timeout_ms
            )
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(conn, thread)

    async def run(self, work: Work[T]) -> T:
        if self._closed:
            raise StorageError("the database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, self._conn)

    async def close(self) -> None:
        """Close the connection after the work already queued; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._conn.close)
        finally:
            self._thread.shutdown(wait=False)


class Database:
    """One SQLite file: a writer connection and a reader connection. Build it with ``open``."""

    def __init__(self, path: str, writer: _Owned, reader: _Owned) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, path: str, busy_timeout_ms: int, prepare: Work[None]) -> Database:
        """Open the file at ``path`` (created 0600; an existing one tightened to 0600), run
        ``prepare`` (the migrations) on the writer, then open the reader."""
        opened: list[_Owned] = []
        try:
            if path != ":memory:":
                await asyncio.to_thread(_private_file, Path(path))
            opened.append(await _Owned.connect(path, busy_timeout_ms, "writer"))
            await opened[0].run(prepare)
            opened.append(await _Owned.connect(path, busy_timeout_ms, "reader"))
        except (sqlite3.Error, OSError, StorageError) as exc:
            for conn in opened:
                await conn.close()
            if isinstance(exc, StorageError):
                raise
            raise StorageError(_describe(exc, path)) from exc
        return cls(path, opened[0], opened[1])

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` as one transaction on the writer: all of its statements or none."""
        return await self._writer.run(lambda conn: _in_transaction(conn, "BEGIN IMMEDIATE", work))

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` on the reader, its statements in one read transaction (one snapshot)."""
        return await self._reader.run(lambda conn: _in_transaction(conn, "BEGIN", work))

    async def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API), mode 0600."""
        try:
            await asyncio.to_thread(_private_file, destination)
            await self._reader.run(lambda conn: _backup(conn, destination))
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"backup to {destination} failed: {exc}") from exc

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            try:
                await conn.close()
            except (sqlite3.Error, ValueError) as exc:  # the disk vanished, or closed already
                log.warning("closing database connection failed: %s", exc)


def _in_transaction(conn: sqlite3.Connection, begin: str, work: Work[T]) -> T:
    try:
        conn.execute(begin)
    except sqlite3.Error as exc:
        raise _storage_error(exc) from exc
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException as exc:
        _rollback(conn)
        if isinstance(exc, sqlite3.Error):
            raise _storage_error(exc) from exc
        raise
    return result


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # SQLite may already have rolled back (e.g. disk full)
        log.debug("rollback: %s", exc)


def _storage_error(exc: sqlite3.Error) -> StorageError:
    """Translate sqlite3's errors into the core's one error type, keeping the cause."""
    err = StorageError(f"database error: {exc}")
    err.__cause__ = exc
    return err


def _connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    # Autocommit mode: transactions are begun and ended explicitly (see _in_transaction).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        for pragma in (
            f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",  # durable across a process crash; fsync at checkpoints
            "PRAGMA foreign_keys = ON",
            "PRAGMA temp_store = MEMORY",
        ):
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def _backup(conn: sqlite3.Connection, destination: Path) -> None:
    target = sqlite3.connect(destination)
    try:
        conn.backup(target)
    finally:
        target.close()


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
