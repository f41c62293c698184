"""Shared fixtures: an injected clock, real SQLite storage in a temp dir, and a runtime factory
wired exactly like the composition root (with a scripted model instead of the network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agentcore.agent import AgentLoop
from agentcore.clock import ManualClock
from agentcore.commands import Commands
from agentcore.llm.base import ClosableLLM
from agentcore.llm.tooling import ToolCallingLLM, ToolMode
from agentcore.runtime import AgentRuntime
from agentcore.settings import AgentSettings, MemorySettings, RuntimeSettings
from agentcore.storage.base import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, InboundMessage

RuntimeFactory = Callable[..., AgentRuntime]


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


def make_settings(**memory: Any) -> AgentSettings:
    base = AgentSettings()
    return replace(base, memory=replace(MemorySettings(), **memory))


def build_runtime(
    storage: Storage,
    llm: ClosableLLM,
    clock: ManualClock,
    settings: AgentSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    admins: frozenset[AgentKey] = frozenset(),
    tools: ToolMode = ToolMode.AUTO,
) -> AgentRuntime:
    settings = settings or AgentSettings()
    model = ToolCallingLLM(llm, tools)
    return AgentRuntime(
        storage=storage,
        llm=model,
        loop=AgentLoop(storage=storage, llm=model, clock=clock, settings=settings),
        commands=Commands(storage=storage, clock=clock, settings=settings, admins=admins),
        clock=clock,
        # Tests send many messages without moving the clock; flood control has its own tests.
        settings=runtime_settings or RuntimeSettings(rate_limit_per_minute=100_000),
    )


def message(
    clock: ManualClock,
    text: str,
    user: str = "console:brad",
    chat: ChatKind = ChatKind.PRIVATE,
    name: str = "",
) -> InboundMessage:
    key = AgentKey.parse(user)
    return InboundMessage(key, text, clock.now(), display_name=name or key.user_id, chat=chat)
