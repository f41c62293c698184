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
from agentcore.consolidator import Consolidator
from agentcore.embedding.base import Embedder, LazyEmbedder
from agentcore.embedding.queries import QueryVectors
from agentcore.embedding.worker import EmbeddingWorker
from agentcore.llm.base import ClosableLLM, LLMClient
from agentcore.llm.tooling import ToolCallingLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.media.intake import MediaIntake
from agentcore.media.voice import LazyTranscriber, Transcriber
from agentcore.runtime import AgentRuntime, AgentSlots
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
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
        turns=turns,
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
) -> AgentRuntime:
    """The runtime adapters talk to, over the model client ``llm``. ``transcriber`` turns voice
    notes into text (None: they are not transcribed)."""
    return runtime_over(settings, storage, build_model(settings, llm), clock, transcriber)


def runtime_over(
    settings: Settings,
    storage: Storage,
    model: ToolCallingLLM,
    clock: Clock,
    transcriber: Transcriber | None = None,
    consolidation_model: LLMClient | None = None,
) -> AgentRuntime:
    """The runtime over a model ``build_model`` made (the composition root keeps a hold of it
    for the endpoint check); consolidation uses ``consolidation_model`` if given."""
    media = MediaIntake(
        storage=storage,
        llm=model,
        transcriber=transcriber,
        clock=clock,
        settings=settings.agent.media,
    )
    loop = AgentLoop(storage=storage, llm=model, clock=clock, settings=settings.agent, media=media)
    turns = AgentSlots(settings.runtime.max_cached_agents)
    consolidator = Consolidator(
        storage=storage,
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
        commands=build_commands(settings, storage, clock, turns),
        clock=clock,
        settings=settings.runtime,
        slots=turns,
        consolidator=consolidator,
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
