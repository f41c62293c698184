"""The PostgreSQL database and its connection pool (asyncpg): every unit of work is one function.

A unit of work is an async function of a pooled connection (``Conn``). ``await db.write(work)``
runs it in one transaction on a connection of its own (committed if it returns, rolled back if
it raises) and returns what it returns, so a transaction is one await with named results, as on
SQLite. ``await db.read(work)`` runs reads, and ``await db.statement(work)`` one statement that
is atomic by itself, without the two round trips of BEGIN and COMMIT (every statement is a
round trip to the server, so the hot paths are written as few statements as they can be).
``Pinned`` is the same interface over one connection the caller holds for a while (a person's
turn; see ``Storage.person``).

Every connection is set up for this workload when it opens: no JIT (compiling a plan costs more
than any query here takes). asyncpg prepares every statement, and PostgreSQL plans a prepared
statement once for any values ("generic") after a few runs; that suits every statement but the
full-text ones: a generic plan for ``tsv @@ $2`` does not know which person or word it is for
and picks a slow scan of the whole index. Those run through ``search``, on connections of their
own with ``plan_cache_mode = force_custom_plan`` (planned for their values every time); the
rest keep their cached plans (planning a write costs as much as running it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from agentcore.search.meaning import QueryEmbedder
from agentcore.storage.protocols import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
if TYPE_CHECKING:
    Conn = PoolConnectionProxy[asyncpg.Record]  # a connection of the pool
else:
    Conn = PoolConnectionProxy  # not subscriptable at run time
Work = Callable[[Conn], Awaitable[T]]

SERVER_SETTINGS = {"jit": "off", "application_name": "agentcore"}
SEARCH_SETTINGS = SERVER_SETTINGS | {"plan_cache_mode": "force_custom_plan"}
CONNECT_TIMEOUT = 10.0  # seconds to reach the server at start before saying it cannot be reached
# What a dropped or unusable connection raises, besides PostgreSQL's own errors.
_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# The connection is gone (a restart, a failover, a terminated backend): it must not be reused.
_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)


class _Gone(Exception):
    """The connection was found gone where the work may run again on another one: before its
    transaction began, or in a read."""


class Database:
    """A pool of connections to one PostgreSQL database. Build it with ``open``."""

    def __init__(self, pool: asyncpg.Pool, search_pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._search_pool = search_pool
        self._locked: Conn | None = None  # holds the lock of ``lock_for_life``

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int, prepare: Callable[[Conn], Awaitable[None]]
    ) -> Database:
        """Connect, run ``prepare`` (the migrations) on one connection, and keep the pools."""
        pools: list[asyncpg.Pool] = []
        try:
            for settings, least in ((SERVER_SETTINGS, 1), (SEARCH_SETTINGS, 0)):
                pools.append(
                    await asyncpg.create_pool(
                        url,
                        min_size=least,
                        max_size=pool_size,
                        timeout=CONNECT_TIMEOUT,
                        server_settings=settings,
                        init=_without_nul,
                    )
                )
            async with pools[0].acquire() as conn:
                await prepare(conn)
        except BaseException as exc:
            for pool in pools:
                pool.terminate()
            if isinstance(exc, (ValueError, *_ERRORS)):
                raise StorageError(_reason(exc)) from exc
            raise
        return cls(pools[0], pools[1])

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` as one transaction: all of its statements or none. If the pooled
        connection turns out to be gone before the transaction began (the server restarted
        meanwhile), it runs once more on a new one."""
        return await self._run(lambda conn: _transaction(conn, work))

    async def read(self, work: Work[T]) -> T:
        """Run ``work``'s reads (each statement sees what was committed when it started), once
        more on a new connection if the first is gone."""
        return await self._run(lambda conn: _reading(conn, work))

    async def statement(self, work: Work[T]) -> T:
        """Run ``work``'s one statement, atomic by itself: no BEGIN and COMMIT round trips.
        Not run again if the connection is lost (it may have been carried out)."""
        return await self._attempt(self._pool, work)

    async def search(self, work: Work[T]) -> T:
        """Run ``work``'s full-text reads, each planned for its values (see above)."""
        return await self._run(lambda conn: _reading(conn, work), self._search_pool)

    async def _run(self, work: Work[T], pool: asyncpg.Pool | None = None) -> T:
        try:
            return await self._attempt(pool or self._pool, work)
        except _Gone as gone:
            log.info("database connection lost (%s); trying a new one", _reason(gone.__cause__))
        return await self._attempt(pool or self._pool, work)

    async def _attempt(self, pool: asyncpg.Pool, work: Work[T]) -> T:
        try:
            async with pool.acquire() as conn:
                try:
                    return await work(conn)
                except (_Gone, *_LOST):
                    conn.terminate()  # the pool opens a new one in its place
                    raise
        except _ERRORS as exc:
            raise StorageError(f"database error: {_reason(exc)}") from exc

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[Pinned]:
        """One connection for the caller's span, as a ``Pinned`` database."""
        try:
            async with self._pool.acquire() as conn:
                yield Pinned(conn, self)
        except _ERRORS as exc:
            raise StorageError(f"database error: {_reason(exc)}") from exc

    async def lock_for_life(self, key: int) -> bool:
        """Take the session advisory lock ``key`` on a connection kept until ``close`` (or
        until this process dies: the server then frees it); False if another session has it."""
        try:
            conn = await self._pool.acquire()
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                self._locked = conn
                return True
            await self._pool.release(conn)
        except _ERRORS as exc:
            raise StorageError(f"database error: {_reason(exc)}") from exc
        return False

    async def close(self) -> None:
        if self._locked is not None:  # the pool unlocks it as it takes the connection back
            with contextlib.suppress(*_ERRORS):
                await self._pool.release(self._locked)
            self._locked = None
        for pool in (self._search_pool, self._pool):
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT)
            except _ERRORS as exc:
                log.warning("closing the database pool failed (%s); dropping it", _reason(exc))
                pool.terminate()


async def _without_nul(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """PostgreSQL text cannot hold NUL (SQLite can): drop it from text written, rather than
    failing the write (a model may send one; the core already strips it from messages). This
    covers text parameters; arrays of text go through ``texts``."""
    await conn.set_type_codec(
        "text",
        schema="pg_catalog",
        encoder=lambda text: text.replace("\x00", ""),
        decoder=str,
        format="text",
    )


def texts(values: Sequence[str | None]) -> list[str | None]:
    """An array parameter of text, without NUL (asyncpg encodes arrays without the codec)."""
    return [None if v is None else v.replace("\x00", "") for v in values]


class Pinned:
    """The ``Database`` interface over one connection that the caller holds (a lost one is an
    error: what the caller holds on it, such as a lock, is gone with it)."""

    def __init__(self, conn: Conn, shared: Database) -> None:
        self._conn = conn
        self._shared = shared

    async def write(self, work: Work[T]) -> T:
        return await self._run(lambda conn: _transaction(conn, work))

    async def read(self, work: Work[T]) -> T:
        return await self._run(lambda conn: _reading(conn, work))

    async def statement(self, work: Work[T]) -> T:
        return await self._run(work)

    async def search(self, work: Work[T]) -> T:
        # Reads of what was committed: they need not hold what the caller holds.
        return await self._shared.search(work)

    async def _run(self, work: Work[T]) -> T:
        try:
            return await work(self._conn)
        except _Gone as gone:
            raise StorageError(f"database error: {_reason(gone.__cause__)}") from gone
        except _ERRORS as exc:
            raise StorageError(f"database error: {_reason(exc)}") from exc


async def _transaction(conn: Conn, work: Work[T]) -> T:
    transaction = conn.transaction()
    try:
        await transaction.start()
    except _LOST as exc:
        raise _Gone from exc
    try:
        result = await work(conn)
    except BaseException:
        with contextlib.suppress(*_ERRORS):  # a lost connection rolled back by itself
            await transaction.rollback()
        raise
    await transaction.commit()
    return result


async def _reading(conn: Conn, work: Work[T]) -> T:
    try:
        return await work(conn)
    except _LOST as exc:  # nothing was written: it may be read again
        raise _Gone from exc


class Part:
    """One protocol's share of ``PostgresStorage``: its methods, over a ``Database`` (or a
    ``Pinned`` connection: the same methods for one person's turn)."""

    def __init__(self, db: Database | Pinned, meaning: QueryEmbedder | None = None) -> None:
        self._db = db
        self._meaning = meaning  # set by ``search_by_meaning``


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***`` (it appears in messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed database URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _reason(exc: BaseException | None) -> str:
    """One line saying what went wrong, without a traceback."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, TimeoutError):
        return "no answer from the server (timed out)"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused: is PostgreSQL running there?"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
