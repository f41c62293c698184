"""The PostgreSQL database and its connection pool (asyncpg): every unit of work is one function.

A unit of work is an async function of a pooled connection (``Conn``). ``await db.write(work)``
runs it in one transaction on a connection of its own (committed if it returns, rolled back if
it raises) and returns what it returns, so a transaction is one await with named results, as on
SQLite. ``await db.read(work)`` runs reads, and ``await db.statement(work)`` one statement that
is atomic by itself, without the two round trips of BEGIN and COMMIT (every statement is a
round trip to the server, so the hot paths are written as few statements as they can be).
``Pinned`` is the same interface over one connection the caller holds for a while, with a
person's lock taken on it (a turn; see ``Storage.person``): those connections come from a pool of
their own, so turns waiting on the model never keep an arriving message from being stored.

Several bot processes share one database, and a lock must not outlive a process that stopped
running (killed, paused, hung). A killed process's connections close, and the server frees its
locks at once. A process that is merely stopped keeps its sockets open, and the server keeps
waiting for it, perhaps in the middle of a transaction whose row locks hold up every process
(no server timeout covers a client stopped half-way through a message). So a connection holding
a lock sends a statement every ``stall / 3`` seconds (``KeepAlive``), and every process ends,
every ``stall / 3`` seconds, the sessions of bot processes that waited on their client for more
than ``stall`` seconds while holding a lock or a transaction (``Database.fence_stalled``): only
a process that stopped running goes silent that long.

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
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from agentcore.search.meaning import QueryEmbedder
from agentcore.storage.protocols import LockLost, PersonBusy, StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
if TYPE_CHECKING:
    Conn = PoolConnectionProxy[asyncpg.Record]  # a connection of the pool
else:
    Conn = PoolConnectionProxy  # not subscriptable at run time
Work = Callable[[Conn], Awaitable[T]]

SERVER_SETTINGS = {"jit": "off"}
SEARCH_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
CONNECT_TIMEOUT = 10.0  # seconds to reach the server at start before saying it cannot be reached
STALL_SECONDS = 60.0  # default silence after which a stopped process loses its locks
_FRESH_TRIES = 3  # pooled connections tried for a lock before the database counts as down
# The two-key advisory lock spaces (the migrations' one-key lock is apart from both).
PERSON_LOCKS, ROLE_LOCKS = 0x61_67_01, 0x61_67_02
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

    def __init__(
        self, url: str, pools: tuple[asyncpg.Pool, asyncpg.Pool, asyncpg.Pool], stall: float
    ) -> None:
        self._url = url
        self._pool, self._search_pool, self._turn_pool = pools
        self._stall = stall
        self._watchdog = asyncio.create_task(self._watch(), name="fence-stalled")

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int,
        prepare: Callable[[Conn], Awaitable[None]],
        stall: float = STALL_SECONDS,
    ) -> Database:
        """Connect, run ``prepare`` (the migrations) on one connection, and keep the pools:
        statements, full-text reads, and turns (``pool_size`` each at most, opened as needed)."""
        pools: list[asyncpg.Pool] = []
        try:
            # Statements (one connection kept open), full-text reads, and turns; only a turn's
            # connection needs the full reset when it goes back (see ``_kept_as_is``).
            kinds = [
                (_settings(), 1, _kept_as_is),
                (_settings() | SEARCH_SETTINGS, 0, _kept_as_is),
                (_settings(), 0, None),
            ]
            for settings, least, reset in kinds:
                pools.append(
                    await asyncpg.create_pool(
                        url,
                        min_size=least,
                        max_size=pool_size,
                        timeout=CONNECT_TIMEOUT,
                        server_settings=settings,
                        init=_without_nul,
                        reset=reset,
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
        return cls(url, (pools[0], pools[1], pools[2]), stall)

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
    async def locked(self, key: int | None, *, wait: bool) -> AsyncIterator[Pinned]:
        """A connection of the turn pool for the caller's span, holding the person lock ``key``
        (waiting for it, or without ``wait`` raising ``PersonBusy``), as a ``Pinned`` database.
        ``key`` None takes no lock (only for showing what the lock prevents).

        If the connection goes (the server ended it, or it dropped), the lock went with it and
        another process may take the person's turn at once: the caller's task is cancelled
        right away (its model call too), and the span ends in ``LockLost``."""
        conn = await self._lock_on(key, wait)
        pinned = Pinned(conn, self)
        fence = _Fence()
        conn.add_termination_listener(fence.trip)
        keep_alive = KeepAlive(pinned.ping, self._stall / 3, fence.trip)
        try:
            yield pinned
        except asyncio.CancelledError:
            if fence.tripped and fence.uncancel() == 0:
                raise LockLost("database connection lost while holding the lock") from None
            raise
        finally:
            fence.disarm()
            keep_alive.stop()
            with contextlib.suppress(*_ERRORS):  # the pool took a closed one back already
                conn.remove_termination_listener(fence.trip)
                # The pool resets the connection as it takes it back: that releases the lock.
                await self._turn_pool.release(conn)

    async def _lock_on(self, key: int | None, wait: bool) -> Conn:
        """A turn connection holding the lock ``key``. A pooled connection found gone (the
        server ended it while idle, e.g. while this process was stopped) held no lock: the next
        one is tried."""
        tries = 0
        while True:
            tries += 1
            try:
                conn: Conn = await self._turn_pool.acquire()
            except _ERRORS as exc:
                raise StorageError(f"database error: {_reason(exc)}") from exc
            try:
                if key is not None and not await conn.fetchval(_LOCK[wait], PERSON_LOCKS, key):
                    raise PersonBusy("another process is answering this person")
                return conn
            except BaseException as exc:
                failed = isinstance(exc, _ERRORS)
                gone = failed and (isinstance(exc, _LOST) or _gone(conn))
                with contextlib.suppress(*_ERRORS):
                    await self._turn_pool.release(conn)
                if not failed:
                    raise
                if not gone or tries == _FRESH_TRIES:
                    raise StorageError(f"database error: {_reason(exc)}") from exc

    async def take_role(self, name: str, *, wait: bool) -> HeldRole | None:
        """Hold the role ``name`` on a connection of its own (see ``Storage.take_role``)."""
        try:
            conn = await asyncpg.connect(
                self._url, timeout=CONNECT_TIMEOUT, server_settings=_settings()
            )
        except _ERRORS as exc:
            raise StorageError(f"database error: {_reason(exc)}") from exc
        try:
            held = await conn.fetchval(_LOCK[wait], ROLE_LOCKS, lock_key(name))
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, _ERRORS):
                raise StorageError(f"database error: {_reason(exc)}") from exc
            raise
        if not held:
            await conn.close()
            return None
        return HeldRole(conn, self._stall)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._stall / 3)
            with contextlib.suppress(StorageError):  # the database is away: nobody to fence
                await self.fence_stalled()

    async def fence_stalled(self) -> None:
        """End the sessions of bot processes that stopped running while holding a lock or a
        transaction (their client silent for ``stall`` seconds): they free what they hold, and
        the process, if it runs again, finds its connection gone (``LockLost``)."""
        ended = await self.statement(
            lambda conn: conn.fetchval(_FENCE, self._stall, PERSON_LOCKS, ROLE_LOCKS)
        )
        if ended:
            log.warning(
                "ended %d database session(s) of a bot process silent for more than %.0fs "
                "(stopped or hung): its people and roles go to the running processes",
                ended,
                self._stall,
            )

    async def close(self) -> None:
        self._watchdog.cancel()
        for pool in (self._turn_pool, self._search_pool, self._pool):
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT)
            except _ERRORS as exc:
                log.warning("closing the database pool failed (%s); dropping it", _reason(exc))
                pool.terminate()


def _settings() -> dict[str, str]:
    # The process id in pg_stat_activity tells an operator which bot process a session is.
    return SERVER_SETTINGS | {"application_name": f"agentcore {os.getpid()}"}


def lock_key(name: str) -> int:
    """A lock's second key: the first 4 bytes of sha256(name), as PostgreSQL's int4. Two names
    sharing a key only share a lock (their holders take turns)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


# Sessions of bot processes (named "agentcore <pid>") waiting on their client for more than $1
# seconds while in a transaction or holding a person's lock or a role.
_FENCE = """SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.application_name LIKE 'agentcore %' AND a.wait_event = 'ClientRead'
  AND a.state_change < clock_timestamp() - make_interval(secs => $1)
  AND (a.xact_start IS NOT NULL OR EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
    AND l.classid IN ($2::oid, $3::oid)))"""

_LOCK = {  # whether to wait → the statement taking an advisory lock (True once held)
    True: "SELECT pg_advisory_lock($1, $2) IS NOT NULL",
    False: "SELECT pg_try_advisory_lock($1, $2)",
}


class _Fence:
    """Cancels the task that holds a lock as soon as the lock is lost (``trip``), the way
    ``asyncio.timeout`` cancels on its deadline."""

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._armed = True
        self.tripped = False

    def trip(self, *_: object) -> None:
        if self._armed and not self.tripped and self._task is not None:
            self.tripped = True
            self._task.cancel()

    def uncancel(self) -> int:
        """Take back this fence's cancellation; how many others are still pending."""
        return self._task.uncancel() if self._task is not None else 0

    def disarm(self) -> None:
        self._armed = False


class KeepAlive:
    """While a lock is held: ``ping`` every ``every`` seconds (a third of the server's idle
    limit), so only a process that stopped running goes silent long enough to lose it.
    ``on_lost`` is called once a ping fails: the connection, and the lock with it, are gone."""

    def __init__(
        self, ping: Callable[[], Awaitable[object]], every: float, on_lost: Callable[[], None]
    ) -> None:
        self._task = asyncio.create_task(self._beat(ping, every, on_lost), name="keep-alive")

    async def _beat(
        self, ping: Callable[[], Awaitable[object]], every: float, on_lost: Callable[[], None]
    ) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await ping()
            except StorageError:
                on_lost()
                return

    def stop(self) -> None:
        self._task.cancel()


class HeldRole:
    """A role (``Storage.take_role``): a lock held on a connection kept for it alone."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record], stall: float) -> None:
        self._conn = conn
        self._mutex = asyncio.Lock()
        self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _: self._lost.set())
        self._keep_alive = KeepAlive(self._ping, stall / 3, self._lost.set)

    async def _ping(self) -> None:
        async with self._mutex:
            try:
                await self._conn.execute("SELECT 1")
            except _ERRORS as exc:
                raise StorageError(_reason(exc)) from exc

    async def alive(self) -> bool:
        if self._lost.is_set():
            return False
        try:
            await self._ping()
        except StorageError:
            self._lost.set()
            return False
        return True

    async def lost(self) -> None:
        await self._lost.wait()

    async def release(self) -> None:
        self._keep_alive.stop()
        try:  # closing the session frees its lock
            await asyncio.wait_for(self._conn.close(), CONNECT_TIMEOUT)
        except (*_ERRORS, asyncio.CancelledError):
            self._conn.terminate()


async def _kept_as_is(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A statement or search connection taken back by its pool. asyncpg has rolled back any
    transaction left open already; the rest of its default reset (releasing advisory locks,
    closing cursors, UNLISTEN, RESET ALL) is one more round trip on every release, for state
    these connections never hold: their advisory locks are transaction-level (migrations),
    cursors end with their transaction, and nothing listens or sets session settings. A turn's
    connection keeps the default: it releases the person's lock."""


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
    """The ``Database`` interface over one connection that the caller holds, with a lock on it
    (a lost connection is ``LockLost``: the lock went with it). Its statements run one at a
    time, as a connection runs them, in the order they were asked for."""

    def __init__(self, conn: Conn, shared: Database) -> None:
        self._conn = conn
        self._shared = shared
        self._mutex = asyncio.Lock()

    async def write(self, work: Work[T]) -> T:
        return await self._run(lambda conn: _transaction(conn, work))

    async def read(self, work: Work[T]) -> T:
        return await self._run(lambda conn: _reading(conn, work))

    async def statement(self, work: Work[T]) -> T:
        return await self._run(work)

    async def search(self, work: Work[T]) -> T:
        # Reads of what was committed: they need not hold what the caller holds.
        return await self._shared.search(work)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1"))

    async def _run(self, work: Work[T]) -> T:
        async with self._mutex:
            try:
                return await work(self._conn)
            except _Gone as gone:
                raise _storage_error(self._conn, gone.__cause__) from gone
            except _ERRORS as exc:
                raise _storage_error(self._conn, exc) from exc


def _storage_error(conn: Conn, exc: BaseException | None) -> StorageError:
    """``LockLost`` if the connection holding a lock is gone, else a ``StorageError``."""
    if isinstance(exc, _LOST) or _gone(conn):
        return LockLost(f"database connection lost: {_reason(exc)}")
    return StorageError(f"database error: {_reason(exc)}")


def _gone(conn: Conn) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took it back as it closed
        return True


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
