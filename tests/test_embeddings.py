"""Search by meaning end to end: the real ``openai`` SDK against the fake server's
``/v1/embeddings``, the background worker (backfill, batches, retries, bad vectors), hybrid
search behind automatic recall and /search, a down endpoint that never fails a turn, and the
settings and start-up line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest

from agentcore.clock import ManualClock
from agentcore.embedding import worker as worker_module
from agentcore.embedding.openai_embedder import OpenAIEmbedder
from agentcore.embedding.worker import EmbeddingWorker
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.records import VectorKind
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime, search_mode, start_embeddings
from config import ConfigError, Settings, load_settings
from tests.conftest import make_settings, message
from tests.fakes.openai_server import EMBEDDING_DIMS, FakeOpenAI

BRAD = AgentKey("console", "brad")


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI([]) as fake:
        yield fake


def with_embeddings(server: FakeOpenAI, **search: object) -> Settings:
    settings = make_settings()
    return replace(
        settings,
        search=replace(settings.search, model="fake-embed", batch_size=2, **search),  # type: ignore[arg-type]
        embedding=replace(settings.embedding, base_url=server.base_url, timeout=0.5),
    )


def embedder_for(server: FakeOpenAI, timeout: float = 0.5) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        model="fake-embed", query_model="", base_url=server.base_url, api_key=None, deadline=timeout
    )


async def started(
    settings: Settings, storage: SQLiteStorage, embedder: OpenAIEmbedder, clock: ManualClock
) -> EmbeddingWorker:
    worker = await start_embeddings(settings, storage, embedder, clock)
    await worker.start()
    return worker


async def drain(worker: EmbeddingWorker) -> int:
    """Run the worker's steps until it has nothing left to do now; vectors stored."""
    stored = 0
    while stored_now := await worker.step():
        stored += stored_now
    return stored


async def told(storage: SQLiteStorage, clock: ManualClock, *texts: str) -> int:
    runtime = build_runtime(make_settings(), storage, FunctionLLM(lambda r: reply("Okay.")), clock)
    for text in texts:
        await runtime.handle(message(clock, text))
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    return agent.id


async def test_backfill_embeds_every_row_in_batches_and_search_finds_by_meaning(
    server: FakeOpenAI, storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    agent_id = await told(storage, clock, "We adopted our new dog last week.", "Pasta for dinner.")
    await storage.add_passage(agent_id, "Brad drives an old automobile", [], clock.now())
    assert await storage.search_messages(agent_id, "puppy") == []  # no word in common
    settings = with_embeddings(server)
    embedder = embedder_for(server)
    caplog.set_level(logging.INFO)
    worker = await started(settings, storage, embedder, clock)
    assert await drain(worker) == 5  # 2 messages, 2 answers, 1 passage
    assert all(len(body["input"]) <= 2 for body in server.embedded)  # batches of 2
    assert "embeddings: 5 messages and passages to embed" in caplog.text
    assert "embeddings: backfill done, 5 rows" in caplog.text
    [progress] = await storage.embedding_progress()
    assert (progress.messages_embedded, progress.passages_embedded) == (4, 1)
    admin = build_runtime(settings, storage, FunctionLLM(lambda r: reply("Okay.")), clock)
    stats = (await admin.handle(message(clock, "/admin stats"))).text
    assert "embeddings (fake-embed): 4 of 4 messages, 1 of 1 passages" in stats
    assert (await storage.embedding_model("fake-embed")).dims == EMBEDDING_DIMS

    [hit] = await storage.search_messages(agent_id, "puppy", limit=1)
    assert hit.content == "We adopted our new dog last week."
    [note] = await storage.search_passages(agent_id, "which car", limit=1)
    assert note.content == "Brad drives an old automobile"
    await embedder.close()


async def test_new_messages_are_embedded_after_the_turn_not_during_it(
    server: FakeOpenAI, storage: SQLiteStorage, clock: ManualClock
) -> None:
    settings = with_embeddings(server)
    embedder = embedder_for(server)
    worker = await started(settings, storage, embedder, clock)
    agent_id = await told(storage, clock, "My puppy chewed my shoes.")
    requests_during_turn = [b for b in server.embedded if b["model"] == "fake-embed"]
    assert all(len(b["input"]) == 1 for b in requests_during_turn)  # queries only, no rows
    assert await storage.unembedded(VectorKind.MESSAGE, 1, 0, 10) != []
    assert await drain(worker) == 2
    assert await storage.unembedded(VectorKind.MESSAGE, 1, 0, 10) == []
    assert [h.content for h in await storage.search_messages(agent_id, "dog", limit=1)] == [
        "My puppy chewed my shoes."
    ]
    await embedder.close()


@pytest.mark.parametrize("fault", ["error", "garbage", "count"])
async def test_a_failed_request_is_retried_later_with_a_growing_wait(
    server: FakeOpenAI,
    storage: SQLiteStorage,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    caplog.set_level(logging.INFO)
    await told(storage, clock, "Hello there.")
    settings = with_embeddings(server, retry_seconds=5.0)
    embedder = embedder_for(server)
    worker = await started(settings, storage, embedder, clock)
    server.embedding_faults = [fault, fault]
    assert await worker.step() == 0
    assert "embeddings: the endpoint failed" in caplog.text and "retrying in 5s" in caplog.text
    asked = len(server.embedded)
    assert await worker.step() == 0 and len(server.embedded) == asked  # not before its time
    clock.advance(timedelta(seconds=5))
    assert await worker.step() == 0  # failed again: now it waits 10 s
    clock.advance(timedelta(seconds=9))
    assert await worker.step() == 0 and len(server.embedded) == asked + 1
    clock.advance(timedelta(seconds=1))
    assert await drain(worker) == 2
    assert "the endpoint works again after 2 failed tries" in caplog.text
    await embedder.close()


async def test_a_hanging_endpoint_times_out_and_is_retried(
    server: FakeOpenAI, storage: SQLiteStorage, clock: ManualClock
) -> None:
    await told(storage, clock, "Hello there.")
    embedder = embedder_for(server, timeout=0.2)
    worker = await started(with_embeddings(server), storage, embedder, clock)
    server.embedding_faults = ["hang"]
    assert await worker.step() == 0
    clock.advance(timedelta(minutes=1))
    assert await drain(worker) == 2
    await embedder.close()


@pytest.mark.parametrize("fault", ["nan", "dims"])
async def test_an_unusable_vector_is_logged_and_its_row_retried_later(
    server: FakeOpenAI,
    storage: SQLiteStorage,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    agent_id = await told(storage, clock, "I walked the dog.")
    embedder = embedder_for(server)
    worker = await started(
        with_embeddings(server, max_retry_seconds=60.0), storage, embedder, clock
    )
    assert await drain(worker) == 2  # the model's dimension is known from here on
    await told(storage, clock, "My doctor said rest.")
    server.embedding_faults = [fault]
    assert await drain(worker) == 1  # one of the two new rows had an unusable vector
    assert "embeddings: unusable vector for message" in caplog.text
    assert len(await storage.unembedded(VectorKind.MESSAGE, 1, 0, 10)) == 1
    # Meanwhile that row is found by its words.
    assert await storage.search_messages(agent_id, "doctor") != []
    clock.advance(timedelta(seconds=60))
    assert await drain(worker) == 1
    assert await storage.unembedded(VectorKind.MESSAGE, 1, 0, 10) == []
    await embedder.close()


def recall_shown(request: LLMRequest) -> str:
    return "\n".join(m.content or "" for m in request.messages[2:] if m.role.value == "system")


async def test_automatic_recall_and_search_command_find_by_meaning(
    server: FakeOpenAI, storage: SQLiteStorage, clock: ManualClock
) -> None:
    settings = with_embeddings(server)
    embedder = embedder_for(server)
    worker = await started(settings, storage, embedder, clock)
    seen: list[LLMRequest] = []

    def model(request: LLMRequest) -> LLMResponse:
        seen.append(request)
        return reply("Okay.")

    runtime = build_runtime(settings, storage, FunctionLLM(model), clock)
    await runtime.handle(message(clock, "We adopted a dog called Rex."))
    await runtime.handle(message(clock, "/reset"))
    await drain(worker)
    clock.advance(timedelta(days=30))
    await runtime.handle(message(clock, "How old is my puppy now?"))
    assert "We adopted a dog called Rex." in recall_shown(seen[-1])
    found = await runtime.handle(message(clock, "/search puppy"))
    assert "We adopted a dog called Rex." in found.text
    await embedder.close()


async def test_a_down_endpoint_never_fails_a_turn_and_search_stays_lexical(
    storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeOpenAI([]) as gone:
        settings = with_embeddings(gone)
        embedder = embedder_for(gone)
    # The server is closed now: every request fails to connect.
    worker = await started(settings, storage, embedder, clock)
    runtime = build_runtime(settings, storage, FunctionLLM(lambda r: reply("Okay.")), clock)
    assert (await runtime.handle(message(clock, "My dog Rex is three."))).text == "Okay."
    assert (await runtime.handle(message(clock, "How old is Rex?"))).text == "Okay."
    assert await worker.step() == 0
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    assert next(h.content for h in await storage.search_messages(agent.id, "Rex three")) == (
        "My dog Rex is three."
    )
    assert "search: no query embedding" in caplog.text
    assert "embeddings: the endpoint failed" in caplog.text
    await embedder.close()


def test_settings_and_the_start_up_line(server_url: str = "http://127.0.0.1:9/v1") -> None:
    lexical = load_settings(env={"OPENAI_API_KEY": "sk-x"}, dotenv_file=None)
    assert lexical.search.model == "" and search_mode(lexical).startswith("search: lexical only")
    hybrid = load_settings(
        env={
            "OPENAI_API_KEY": "sk-chat",
            "AGENTCORE_SEARCH__EMBEDDING_MODEL": "nomic-embed-text",
            "AGENTCORE_SEARCH__EMBEDDING_BASE_URL": server_url,
        },
        dotenv_file=None,
    )
    assert (
        hybrid.embedding.base_url == server_url and hybrid.embedding.api_key.reveal() == "sk-chat"
    )
    assert (
        search_mode(hybrid)
        == f"search: hybrid, words and meaning (nomic-embed-text at {server_url})"
    )
    with pytest.raises(ConfigError, match=r"search\.embedding_batch"):
        load_settings(
            env={"OPENAI_API_KEY": "k", "AGENTCORE_SEARCH__EMBEDDING_BATCH": "0"}, dotenv_file=None
        )


async def test_once_a_failed_endpoints_wait_is_over_with_nothing_to_embed_the_worker_polls(
    server: FakeOpenAI,
    storage: SQLiteStorage,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a loop asking the database again at once: the retry time is past, but the rows it
    was for are gone (the person was forgotten meanwhile)."""
    agent_id = await told(storage, clock, "Hello there.")
    settings = with_embeddings(server, retry_seconds=5.0)
    embedder = embedder_for(server)
    worker = await started(settings, storage, embedder, clock)
    server.embedding_faults = ["error"]
    assert await worker.step() == 0
    await storage.delete_agent(agent_id)
    clock.advance(timedelta(seconds=6))
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise asyncio.CancelledError

    monkeypatch.setattr(worker_module, "asyncio", SimpleNamespace(sleep=sleep))
    with pytest.raises(asyncio.CancelledError):
        await worker.run()
    assert pauses == [settings.search.poll_seconds] * 3
    await embedder.close()
