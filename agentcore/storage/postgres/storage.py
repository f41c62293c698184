"""``PostgresStorage``: the database of PostgreSQL (asyncpg), shared by any number of processes.

Each protocol is implemented in its own module over one ``Database`` (connection pools;
``connection``); this class puts them together, as ``SQLiteStorage`` does for SQLite. To add a
table: the next file in ``migrations/`` and the methods in the module of their protocol, on
every backend; the contract suite runs them on all.

Several bot processes may share the database: a person's turn holds that person's advisory lock
on the connection its writes go through (``person``), roles such as "the Telegram poller" are
advisory locks on connections of their own (``take_role``), and ``pace`` spaces events across
processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from agentcore.storage.postgres.agents import AgentRows
from agentcore.storage.postgres.blocks import BlockRows
from agentcore.storage.postgres.connection import STALL_SECONDS, Database, Pinned, lock_key
from agentcore.storage.postgres.consolidations import ConsolidationRows
from agentcore.storage.postgres.files import FileRows
from agentcore.storage.postgres.inbox import InboxRows
from agentcore.storage.postgres.messages import MessageRows
from agentcore.storage.postgres.migrate import migrate
from agentcore.storage.postgres.ops import OpsRows, pace
from agentcore.storage.postgres.passages import PassageRows
from agentcore.storage.postgres.reminders import ReminderRows
from agentcore.storage.postgres.usage import UsageRows
from agentcore.storage.postgres.vectors import VectorRows
from agentcore.storage.protocols import PersonStorage, Role, Storage
from agentcore.types import AgentKey


class _Stores(
    AgentRows,
    BlockRows,
    MessageRows,
    InboxRows,
    PassageRows,
    FileRows,
    OpsRows,
    ConsolidationRows,
    ReminderRows,
    UsageRows,
    VectorRows,
):
    """Every protocol over one database, or over one held connection."""


class PostgresStorage(_Stores):
    """``Storage`` on a PostgreSQL database. Build it with ``await PostgresStorage.open(url)``."""

    def __init__(self, db: Database, *, person_locks: bool = True) -> None:
        super().__init__(db)
        self._pool = db
        self._person_locks = person_locks

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 10,
        stall: float = STALL_SECONDS,
        person_locks: bool = True,
    ) -> PostgresStorage:
        """Connect to the database at ``url`` (``postgresql://user:password@host:port/db``)
        and bring its schema up to date. At most ``pool_size`` turns run at once (each holds a
        connection). A process that stops running (paused, hung) loses its locks to the other
        processes after ``stall`` seconds. ``person_locks=False`` turns the per-person lock off:
        only for showing, in a test, what it prevents."""
        db = await Database.open(url, pool_size=pool_size, stall=stall, prepare=migrate)
        return cls(db, person_locks=person_locks)

    @property
    def shared(self) -> bool:
        return True

    def person(
        self, key: AgentKey, *, wait: bool = True
    ) -> AbstractAsyncContextManager[PersonStorage]:
        return self._held(key, wait)

    @asynccontextmanager
    async def _held(self, key: AgentKey, wait: bool) -> AsyncIterator[PersonStorage]:
        lock = lock_key(f"{key.platform}:{key.user_id}") if self._person_locks else None
        async with self._pool.locked(lock, wait=wait) as pinned:
            yield _Stores(pinned, self._meaning)

    async def take_role(self, name: str, *, wait: bool) -> Role | None:
        return await self._pool.take_role(name, wait=wait)

    async def pace(self, name: str, interval: float) -> None:
        await pace(self._pool, name, interval)

    async def close(self) -> None:
        await self._pool.close()


def _conforms(store: PostgresStorage, held: Pinned) -> tuple[Storage, PersonStorage]:
    return store, _Stores(held)  # mypy checks both against the protocols
