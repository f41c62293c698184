"""``SQLiteStorage``: the embedded default, one file (WAL mode, FTS5 search).

Each protocol is implemented in its own module over the one ``Database`` (``connection``);
this class puts them together. To add a table: a new migration file in ``migrations/``, the
methods in the module of the protocol they belong to (or a new module and ``Part``, listed
here), and the same methods on every other backend; the contract suite runs them on all.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from agentcore.storage.protocols import PersonStorage, Role, Storage
from agentcore.storage.single import LocalRoles
from agentcore.storage.sqlite.agents import AgentRows
from agentcore.storage.sqlite.blocks import BlockRows
from agentcore.storage.sqlite.connection import Database
from agentcore.storage.sqlite.consolidations import ConsolidationRows
from agentcore.storage.sqlite.files import FileRows
from agentcore.storage.sqlite.inbox import InboxRows
from agentcore.storage.sqlite.messages import MessageRows
from agentcore.storage.sqlite.migrate import migrate
from agentcore.storage.sqlite.ops import OpsRows
from agentcore.storage.sqlite.passages import PassageRows
from agentcore.storage.sqlite.reminders import ReminderRows
from agentcore.storage.sqlite.usage import UsageRows
from agentcore.storage.sqlite.vectors import VectorRows
from agentcore.types import AgentKey


class SQLiteStorage(
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
    """``Storage`` on one SQLite file. Build it with ``await SQLiteStorage.open(path)``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._roles = LocalRoles()

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> SQLiteStorage:
        """Open (creating if needed, mode 0600) and migrate the database at ``path``."""
        return cls(await Database.open(str(path), busy_timeout_ms, migrate))

    @property
    def shared(self) -> bool:
        return False  # one bot process per file: bots.instance.InstanceLock

    @property
    def path(self) -> str:
        return self._db.path

    def person(
        self, key: AgentKey, *, wait: bool = True
    ) -> AbstractAsyncContextManager[PersonStorage]:
        # One process per file (the instance lock), whose runtime keeps a person's turns apart.
        return contextlib.nullcontext(self)

    async def take_role(self, name: str, *, wait: bool) -> Role | None:
        return await self._roles.take_role(name, wait=wait)

    async def pace(self, name: str, interval: float) -> None:
        await self._roles.pace(name, interval)

    async def close(self) -> None:
        await self._db.close()


def _conforms(store: SQLiteStorage) -> Storage:  # mypy checks the backend against the protocol
    return store
