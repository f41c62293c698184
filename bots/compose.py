"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

import asyncio
import importlib

from agentcore.agent import AgentLoop
from agentcore.clock import Clock, Timer
from agentcore.commands import Commands
from agentcore.consolidator import Consolidator
from agentcore.embedding.base import Embedder, LazyEmbedder
from agentcore.embedding.queries import QueryVectors
from agentcore.embedding.worker import EmbeddingWorker
from agentcore.llm.base import ClosableLLM, LLMClient
from agentcore.llm.tooling import ToolCallingLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.media.intake import MediaIntake
from agentcore.media.voice import LazyTranscriber, Transcriber
from agentcore.memory.prompt import Layout, prompt_messages
from agentcore.runtime import AgentRuntime, AgentSlots, PersonLocks
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.scheduler import Scheduler
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.usage.meter import Meter
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


def build_commands(
    settings: Settings, storage: Storage, clock: Clock, turns: AgentSlots | None = None
) -> Commands:
    """The chat and operator commands (the operator CLI needs only these); ``turns`` are the
    runtime's per-person turn locks, which an import waits for, as it waits for the person's
    lock in the database (a turn of theirs in another process)."""
    slots = turns if turns is not None else AgentSlots(settings.runtime.max_cached_agents)
    return Commands(
        storage=storage,
        clock=clock,
        settings=settings.agent,
        admins=settings.runtime.admins,
        model=settings.llm.model,
        usage=settings.usage,
        turns=PersonLocks(slots, storage),
    )


def build_model(settings: Settings, llm: ClosableLLM) -> ToolCallingLLM:
    """The model as the agent loop talks to it: behind the configured concurrency cap, with
    tools sent the way the endpoint takes them and every answer read into content and calls."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    return ToolCallingLLM(capped, settings.llm.tools)


def build_runtime(
    settings: Settings,
    storage: Storage,
    llm: ClosableLLM,
    clock: Clock,
    transcriber: Transcriber | None = None,
    *,
    doorbell: Doorbell | None = None,
    layout: Layout = prompt_messages,
) -> AgentRuntime:
    """The runtime adapters talk to, over the model client ``llm``. ``transcriber`` turns voice
    notes into text (None: they are not transcribed); ``doorbell`` is the scheduler's (see
    ``build_scheduler``): reminders the agent schedules ring it; ``layout`` compiles the prompts
    (only ``bench.prompt_cache`` passes another: the earlier layout, as its baseline)."""
    model = build_model(settings, llm)
    return runtime_over(
        settings, storage, model, clock, transcriber, doorbell=doorbell, layout=layout
    )


def runtime_over(
    settings: Settings,
    storage: Storage,
    model: ToolCallingLLM,
    clock: Clock,
    transcriber: Transcriber | None = None,
    consolidation_model: LLMClient | None = None,
    *,
    doorbell: Doorbell | None = None,
    layout: Layout = prompt_messages,
) -> AgentRuntime:
    """The runtime over a model ``build_model`` made (the composition root keeps a hold of it
    for the endpoint check); consolidation uses ``consolidation_model`` if given. Every call
    for a person, consolidation's included, is metered (``build_meter``)."""
    turns = AgentSlots(settings.runtime.max_cached_agents)
    commands = build_commands(settings, storage, clock, turns)
    meter = build_meter(settings, storage, model, clock, commands)
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
        doorbell=doorbell or Doorbell(),
        layout=layout,
    )
    consolidator = Consolidator(
        storage=storage,
        meter=meter,
        llm=consolidation_model or model,
        clock=clock,
        locks=turns,
        memory=settings.agent.memory,
        settings=settings.consolidation,
        model=settings.consolidation.model or settings.llm.model,
    )
    return AgentRuntime(
        storage=storage,
        llm=model,
        loop=loop,
        commands=commands,
        clock=clock,
        settings=settings.runtime,
        slots=turns,
        consolidator=consolidator,
    )


def build_scheduler(
    settings: Settings,
    storage: Storage,
    runtime: AgentRuntime,
    clock: Timer,
    doorbell: Doorbell,
) -> Scheduler:
    """What sends reminders when they are due, through the adapters attached to it."""
    return Scheduler(
        store=storage,
        runner=runtime,
        clock=clock,
        settings=settings.agent.reminders,
        default_zone=settings.agent.memory.timezone,
        doorbell=doorbell,
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


def build_embedder(settings: Settings) -> Embedder | None:
    """The configured embedding endpoint, built on first use; None: search is lexical only."""
    if not settings.search.model:
        return None
    config = settings.embedding

    async def build() -> Embedder:
        # The SDK import takes most of a second; the loop stays responsive meanwhile.
        module = await asyncio.to_thread(
            importlib.import_module, "agentcore.embedding.openai_embedder"
        )
        embedder: Embedder = module.OpenAIEmbedder(
            model=settings.search.model,
            query_model=config.query_model,
            base_url=config.base_url or None,
            api_key=config.api_key.reveal() or None,
            deadline=config.timeout,
        )
        return embedder

    return LazyEmbedder(build)


async def start_embeddings(
    settings: Settings, storage: Storage, embedder: Embedder, clock: Clock
) -> EmbeddingWorker:
    """Searches rank by meaning from now on (rows without vectors by their words), and the
    worker that embeds every row in the background (``await worker.run()``)."""
    model = await storage.embedding_model(settings.search.model)
    queries = QueryVectors(
        embedder, model, clock, settings.search.query_timeout, settings.search.retry_seconds
    )
    storage.search_by_meaning(queries)
    return EmbeddingWorker(
        storage=storage,
        embedder=embedder,
        clock=clock,
        settings=settings.search,
        model=model,
        queries=queries,
    )


def search_mode(settings: Settings) -> str:
    """The start-up line that says how search runs."""
    if not settings.search.model:
        return "search: lexical only (set [search] embedding_model for search by meaning too)"
    where = settings.embedding.base_url or "the OpenAI API"
    return f"search: hybrid, words and meaning ({settings.search.model} at {where})"
