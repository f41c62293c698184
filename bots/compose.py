"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

from agentcore.agent import AgentLoop
from agentcore.clock import Clock
from agentcore.commands import Commands
from agentcore.llm.base import ClosableLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.runtime import AgentRuntime
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from config import Settings


async def open_storage(settings: Settings) -> Storage:
    """The configured database: PostgreSQL if ``AGENTCORE_DB`` is its URL (any number of bot
    processes may share it), else SQLite (one bot process per file:
    ``bots.instance.InstanceLock``). ``StorageError`` (one line, no password) if it cannot be
    used."""
    if not settings.database_url:
        return await SQLiteStorage.open(settings.database, busy_timeout_ms=settings.busy_timeout_ms)
    from agentcore.storage.postgres import PostgresStorage  # noqa: PLC0415 (asyncpg)

    return await PostgresStorage.open(
        settings.database_url.reveal(),
        pool_size=settings.pool_size,
        stall=settings.stall_seconds,
        person_locks=settings.person_locks,
    )


def database_shown(settings: Settings) -> str:
    """Where the database is, for messages: the SQLite path, or the URL without password."""
    if settings.database_url:
        from agentcore.storage.postgres.connection import redacted  # noqa: PLC0415

        return redacted(settings.database_url.reveal())
    return str(settings.database)


def build_commands(settings: Settings, storage: Storage, clock: Clock) -> Commands:
    """The chat and operator commands (the operator CLI needs only these)."""
    return Commands(
        storage=storage,
        clock=clock,
        settings=settings.agent,
        admins=settings.runtime.admins,
        model=settings.llm.model,
    )


def build_runtime(
    settings: Settings, storage: Storage, llm: ClosableLLM, clock: Clock
) -> AgentRuntime:
    """The runtime adapters talk to, with the model behind the configured concurrency cap."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    return AgentRuntime(
        storage=storage,
        llm=capped,
        loop=AgentLoop(storage=storage, llm=capped, clock=clock, settings=settings.agent),
        commands=build_commands(settings, storage, clock),
        clock=clock,
        settings=settings.runtime,
    )
