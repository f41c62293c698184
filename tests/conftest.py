"""Shared fixtures: an injected clock, real SQLite storage in a temp dir, every backend for the
storage contract (``any_storage``: SQLite, and PostgreSQL from ``tests.postgres``), and settings
built from the shipped defaults for ``bots.compose.build_runtime`` (the composition root's own
builder)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import Clock, ManualClock
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, InboundMessage
from config import Settings, load_settings
from tests import postgres

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "agentcore.db"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = await SQLiteStorage.open(db_path)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session (see ``tests.postgres``)."""
    try:
        with postgres.postgres_server() as url:
            yield url
    except postgres.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of the session's own, with the schema applied."""
    url = asyncio.run(postgres.fresh_database(postgres_server))

    async def migrate() -> None:
        await (await PostgresStorage.open(url)).close()

    asyncio.run(migrate())
    yield url
    asyncio.run(postgres.drop_database(postgres_server, url))


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """The session's database, emptied after each test (faster than a database per test)."""
    yield postgres_database
    asyncio.run(postgres.empty_database(postgres_database))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the storage of a test that runs on every backend lives: a SQLite path or a
    PostgreSQL URL (asked for here, outside the test's event loop)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "store.db")


async def open_backend(where: str) -> Storage:
    if where.startswith("postgresql://"):
        return await PostgresStorage.open(where)
    return await SQLiteStorage.open(where)


@pytest.fixture
async def any_storage(backend: str) -> AsyncIterator[Storage]:
    """The storage of a test that every backend must pass."""
    store = await open_backend(backend)
    yield store
    await store.close()


@functools.cache
def _shipped() -> Settings:
    """The shipped defaults, as the bot loads them with no environment and no files."""
    return load_settings(env={}, dotenv_file=None, require_model=False)


def make_settings(
    *,
    agent: Mapping[str, Any] | None = None,
    memory: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
    media: Mapping[str, Any] | None = None,
    llm: Mapping[str, Any] | None = None,
    consolidation: Mapping[str, Any] | None = None,
) -> Settings:
    """The shipped defaults with some fields of a section replaced, e.g.
    ``make_settings(memory={"context_window": 3000})``. Tests send many messages without moving
    the clock, so the flood limit is off unless ``runtime`` sets it (it has its own tests);
    answers arrive whole, not streamed, unless ``agent`` sets ``stream`` (it has its own tests,
    which read the edits); and consolidation (a model call after a session) is off unless
    ``consolidation`` turns it on (it has its own tests)."""
    base = _shipped()
    memory_settings = replace(base.agent.memory, **(memory or {}))
    media_settings = replace(base.agent.media, **(media or {}))
    return replace(
        base,
        agent=replace(
            base.agent,
            memory=memory_settings,
            media=media_settings,
            **({"stream": False} | dict(agent or {})),
        ),
        llm=replace(base.llm, **(llm or {})),
        consolidation=replace(
            base.consolidation, **({"enabled": False} | dict(consolidation or {}))
        ),
        runtime=replace(base.runtime, **({"rate_limit_per_minute": 100_000} | dict(runtime or {}))),
        usage=replace(base.usage, **(usage or {})),
    )


def message(
    clock: Clock,
    text: str,
    user: str = "console:brad",
    chat: ChatKind = ChatKind.PRIVATE,
    name: str = "",
) -> InboundMessage:
    key = AgentKey.parse(user)
    return InboundMessage(key, text, clock.now(), display_name=name or key.user_id, chat=chat)
