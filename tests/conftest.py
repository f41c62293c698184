"""Shared fixtures: an injected clock, real SQLite storage in a temp dir, and settings built from
the shipped defaults for ``bots.compose.build_runtime`` (the composition root's own builder)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ChatKind, InboundMessage
from config import Settings, load_settings


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
) -> Settings:
    """The shipped defaults with some fields of a section replaced, e.g.
    ``make_settings(memory={"context_window": 3000})``. Tests send many messages without moving
    the clock, so the flood limit is off unless ``runtime`` sets it (it has its own tests)."""
    base = _shipped()
    memory_settings = replace(base.agent.memory, **(memory or {}))
    return replace(
        base,
        agent=replace(base.agent, memory=memory_settings, **(agent or {})),
        runtime=replace(base.runtime, **({"rate_limit_per_minute": 100_000} | dict(runtime or {}))),
        usage=replace(base.usage, **(usage or {})),
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
