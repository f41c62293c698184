"""Model and platform faults end to end: a person on Telegram (the fake Bot API and the real
PTB client) talking to the fake OpenAI server through the real openai client.

For each fault: the person gets one short message within a bounded time, their message is
stored, and the next message works.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agentcore.agent import STEP_LIMIT_REPLY
from agentcore.clock import ManualClock
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.messages import Role
from agentcore.runtime import LLM_FAILED
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime
from bots.telegram import TelegramAdapter, build_application
from tests.conftest import make_settings
from tests.fakes.openai_server import Action, Completion, Error, FakeOpenAI, Hang, Raw
from tests.fakes.telegram_server import FakeTelegram, User

ALICE = User(2001, "Alice", "alice")
FAST: dict[str, Any] = {"retry_delays": (0.01, 0.01, 0.01), "backoff": (0.01, 0.05)}
DEADLINE = 2.0  # the model client's whole budget per call, retries included


def tool_results(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m["role"] == "tool"]


# Each fault: what the fake model does on the person's first message (it answers normally once
# the person sends "again"), and what the person should see.
FAULTS: dict[str, tuple[Callable[[dict[str, Any]], Action], str]] = {
    "http 500": (lambda body: Error(500, "boom"), LLM_FAILED),
    "429 retry-after": (lambda body: Error(429, "slow", {"retry-after": "1"}), LLM_FAILED),
    "hang past the timeout": (lambda body: Hang(30), LLM_FAILED),
    "non-JSON body": (lambda body: Raw("<html>502 Bad Gateway</html>", "text/html"), LLM_FAILED),
    "malformed tool arguments": (
        lambda body: (
            Completion(content="fixed it")
            if tool_results(body) and "not valid JSON" in tool_results(body)[-1]
            else Completion(tool_calls=[("core_memory_append", "{label: human")])
        ),
        "fixed it",
    ),
    "unknown tool": (
        lambda body: (
            Completion(content="ok, no such tool")
            if tool_results(body) and "no tool named" in tool_results(body)[-1]
            else Completion(tool_calls=[("delete_everything", {})])
        ),
        "ok, no such tool",
    ),
    "tool loop that never ends": (
        lambda body: Completion(tool_calls=[("archival_memory_search", {"query": "x"})]),
        STEP_LIMIT_REPLY,
    ),
}


def scripted(fault: Callable[[dict[str, Any]], Action]) -> Callable[[dict[str, Any]], Action]:
    def respond(body: dict[str, Any]) -> Action:
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        return Completion(content="back to normal") if users[-1] == "again" else fault(body)

    return respond


async def telegram_bot(
    fake: FakeTelegram, storage: SQLiteStorage, base_url: str
) -> tuple[TelegramAdapter, Any]:
    llm = OpenAICompatibleLLM(
        model="m", base_url=base_url, api_key="sk-test", deadline=DEADLINE, max_retries=1
    )
    runtime = build_runtime(make_settings(), storage, llm, ManualClock())
    adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime, **FAST)
    await adapter.start()
    return adapter, runtime


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def stored_user_texts(storage: SQLiteStorage) -> list[str]:
    agent = await storage.load_agent(AgentKey("telegram", str(ALICE.id)))
    assert agent is not None
    return [m.content or "" for m in await storage.all_messages(agent.id) if m.role is Role.USER]


@pytest.mark.parametrize("name", list(FAULTS))
async def test_model_fault(fake: FakeTelegram, storage: SQLiteStorage, name: str) -> None:
    fault, expected = FAULTS[name]
    async with FakeOpenAI(scripted(fault)) as model:
        adapter, runtime = await telegram_bot(fake, storage, model.base_url)
        try:
            started = time.monotonic()
            fake.private(ALICE, "hello")
            await fake.wait_for_messages(ALICE.id, 1)
            waited = time.monotonic() - started
            assert fake.texts(ALICE.id) == [expected]
            assert waited < DEADLINE + 3  # bounded: the deadline plus the chat round trips
            fake.private(ALICE, "again")
            await fake.wait_for_messages(ALICE.id, 2)
            assert fake.texts(ALICE.id)[1] == "back to normal"
            assert await stored_user_texts(storage) == ["hello", "again"]
        finally:
            await adapter.stop()
            await runtime.shutdown()


async def test_connection_refused(fake: FakeTelegram, storage: SQLiteStorage) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    adapter, runtime = await telegram_bot(fake, storage, f"http://127.0.0.1:{closed_port}/v1")
    try:
        fake.private(ALICE, "hello")
        await fake.wait_for_messages(ALICE.id, 1)
        assert fake.texts(ALICE.id) == [LLM_FAILED]
        assert await stored_user_texts(storage) == ["hello"]
    finally:
        await adapter.stop()
        await runtime.shutdown()


class LogWatch(logging.Handler):
    """Sets an event when a log line containing ``needle`` is written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_a_reply_that_cannot_be_sent_is_logged_and_kept(
    fake: FakeTelegram, storage: SQLiteStorage
) -> None:
    watch = LogWatch("could not send a reply")
    logging.getLogger("bots.telegram").addHandler(watch)
    async with FakeOpenAI(lambda body: Completion(content="you will not see this")) as model:
        adapter, runtime = await telegram_bot(fake, storage, model.base_url)
        try:
            fake.inject("sendMessage", 500, "Internal Server Error", times=100)
            fake.private(ALICE, "hello")
            await asyncio.wait_for(watch.seen.wait(), 10)
            assert sum(c.method == "sendMessage" for c in fake.calls) >= 2  # it retried
            assert fake.texts(ALICE.id) == []
            agent = await storage.load_agent(AgentKey("telegram", str(ALICE.id)))
            assert agent is not None
            history = [(m.role, m.content) for m in await storage.all_messages(agent.id)]
            assert history == [(Role.USER, "hello"), (Role.ASSISTANT, "you will not see this")]
        finally:
            await adapter.stop()
            await runtime.shutdown()
            logging.getLogger("bots.telegram").removeHandler(watch)
