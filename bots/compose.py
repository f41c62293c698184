"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

import asyncio
import importlib

from agentcore.agent import AgentLoop
from agentcore.clock import Clock
from agentcore.commands import Commands
from agentcore.llm.base import ClosableLLM, LLMClient
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.media.intake import MediaIntake
from agentcore.media.voice import LazyTranscriber, Transcriber
from agentcore.memory.prompt import Layout, prompt_messages
from agentcore.runtime import AgentRuntime, AgentSlots
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.usage.meter import Meter
from bots.adapter import AdapterError
from config import Settings


async def open_storage(settings: Settings, *, bot: bool = False) -> Storage:
    """The configured database: PostgreSQL if ``AGENTCORE_DB`` is its URL, else SQLite.
    ``StorageError`` (one line, no password) if it cannot be used. For the ``bot`` process, a
    PostgreSQL database is claimed: ``AdapterError`` if another bot process runs on it (SQLite
    files are claimed by ``bots.instance.InstanceLock``)."""
    if not settings.database_url:
        return await SQLiteStorage.open(settings.database, busy_timeout_ms=settings.busy_timeout_ms)
    from agentcore.storage.postgres import PostgresStorage  # noqa: PLC0415 (asyncpg)

    storage = await PostgresStorage.open(
        settings.database_url.reveal(), pool_size=settings.pool_size
    )
    if bot and not await storage.claim():
        await storage.close()
        raise AdapterError(
            f"another bot process is already running on {database_shown(settings)}: stop it "
            "first (one bot process per database)"
        )
    return storage


def database_shown(settings: Settings) -> str:
    """Where the database is, for messages: the SQLite path, or the URL without password."""
    if settings.database_url:
        from agentcore.storage.postgres.connection import redacted  # noqa: PLC0415

        return redacted(settings.database_url.reveal())
    return str(settings.database)


def build_commands(
    settings: Settings, storage: Storage, clock: Clock, turns: AgentSlots | None = None
) -> Commands:
    """The chat and operator commands (the operator CLI needs only these); ``turns`` are the
    runtime's per-person turn locks, which an import waits for."""
    return Commands(
        storage=storage,
        clock=clock,
        settings=settings.agent,
        admins=settings.runtime.admins,
        model=settings.llm.model,
        usage=settings.usage,
        turns=turns,
    )


def build_runtime(
    settings: Settings,
    storage: Storage,
    llm: ClosableLLM,
    clock: Clock,
    transcriber: Transcriber | None = None,
    *,
    layout: Layout = prompt_messages,
) -> AgentRuntime:
    """The runtime adapters talk to, with the model behind the configured concurrency cap and
    every call for a person metered (``build_meter``). ``transcriber`` turns voice notes into
    text (None: they are not transcribed); ``layout`` compiles the prompts (only
    ``bench.prompt_cache`` passes another: the earlier layout, as its baseline)."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    turns = AgentSlots(settings.runtime.max_cached_agents)
    commands = build_commands(settings, storage, clock, turns)
    meter = build_meter(settings, storage, capped, clock, commands)
    media = MediaIntake(
        storage=storage,
        meter=meter,
        transcriber=transcriber,
        clock=clock,
        settings=settings.agent.media,
    )
    loop = AgentLoop(
        storage=storage,
        meter=meter,
        clock=clock,
        settings=settings.agent,
        media=media,
        layout=layout,
    )
    return AgentRuntime(
        storage=storage,
        llm=capped,
        loop=loop,
        commands=commands,
        clock=clock,
        settings=settings.runtime,
        slots=turns,
    )


def build_meter(
    settings: Settings, storage: Storage, llm: LLMClient, clock: Clock, commands: Commands
) -> Meter:
    """The seam every model call for a person goes through: recorded, and held to the token
    budgets (operators exempt)."""
    return Meter(
        llm=llm,
        storage=storage,
        clock=clock,
        settings=settings.usage,
        tz=settings.agent.memory.timezone,
        model=settings.llm.model,
        exempt=commands.is_operator,
    )


def build_transcriber(settings: Settings) -> Transcriber | None:
    """Voice notes' transcription endpoint as configured, built on first use; None if off."""
    if not settings.agent.media.transcription:
        return None
    config = settings.transcription

    async def build() -> Transcriber:
        # The SDK import takes most of a second; the loop stays responsive meanwhile.
        module = await asyncio.to_thread(importlib.import_module, "agentcore.llm.transcribe")
        transcriber: Transcriber = module.OpenAITranscriber(
            model=config.model,
            base_url=config.base_url or None,
            api_key=config.api_key.reveal() or None,
            deadline=max(60.0, settings.llm.timeout),
            max_retries=settings.llm.max_retries,
        )
        return transcriber

    return LazyTranscriber(build)
