"""``PostgresStorage``: the database of PostgreSQL (asyncpg).

Each protocol is implemented in its own module over one ``Database`` (a connection pool;
``connection``); this class puts them together, as ``SQLiteStorage`` does for SQLite. To add a
table: the next file in ``migrations/`` and the methods in the module of their protocol, on
every backend; the contract suite runs them on all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from agentcore.storage.postgres.agents import AgentRows
from agentcore.storage.postgres.blocks import BlockRows
from agentcore.storage.postgres.connection import Database, Pinned
from agentcore.storage.postgres.consolidations import ConsolidationRows
from agentcore.storage.postgres.files import FileRows
from agentcore.storage.postgres.inbox import InboxRows
from agentcore.storage.postgres.messages import MessageRows
from agentcore.storage.postgres.migrate import migrate
from agentcore.storage.postgres.ops import OpsRows
from agentcore.storage.postgres.passages import PassageRows
from agentcore.storage.postgres.vectors import VectorRows
from agentcore.storage.protocols import PersonStorage, Storage
from agentcore.types import AgentKey

# pg_try_advisory_lock key: the first 8 bytes of sha256("agentcore bot process"), as a bigint.
_ONE_BOT = 0x2581_A6BC_FA93_8A8E


class _Stores(
    AgentRows,
    BlockRows,
    MessageRows,
    InboxRows,
    PassageRows,
    FileRows,
    OpsRows,
    ConsolidationRows,
    VectorRows,
):
    """Every protocol over one database, or over one held connection."""


class PostgresStorage(_Stores):
    """``Storage`` on a PostgreSQL database. Build it with ``await PostgresStorage.open(url)``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._pool = db

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> PostgresStorage:
        """Connect to the database at ``url`` (``postgresql://user:password@host:port/db``)
        and bring its schema up to date."""
        return cls(await Database.open(url, pool_size=pool_size, prepare=migrate))

    async def claim(self) -> bool:
        """Mark this database as used by this bot process, for as long as it runs; False if
        another bot process has it. (Until turns take a per-person lock, one bot process per
        database keeps each person's turns in order; the operator CLI does not claim it.)"""
        return await self._pool.lock_for_life(_ONE_BOT)

    def person(self, key: AgentKey) -> AbstractAsyncContextManager[PersonStorage]:
        return self._held()

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[PersonStorage]:
        # One connection for the whole span: where a per-person lock is to be held, so that
        # every write of the turn goes through the lock's connection.
        async with self._pool.hold() as pinned:
            yield _Stores(pinned, self._meaning)

    async def close(self) -> None:
        await self._pool.close()


def _conforms(store: PostgresStorage, held: Pinned) -> tuple[Storage, PersonStorage]:
    return store, _Stores(held)  # mypy checks both against the protocols
