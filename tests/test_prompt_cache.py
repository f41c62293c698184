"""Prompt caching as providers report it: the fake server measures how much of each request
repeats the person's previous one, the real ``openai`` client reads every provider's way of
saying so, and the bot records it per call."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.llm.tooling import ToolMode
from agentcore.messages import PromptMessage, Role
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import (
    Completion,
    FakeOpenAI,
    Raw,
    common_prefix,
    last_user,
    prompt_text,
)


def client(server: FakeOpenAI, send_cache_key: bool = True) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model="fake-model",
        base_url=server.base_url,
        api_key="sk-test",
        deadline=5.0,
        send_cache_key=send_cache_key,
    )


def request(*texts: str, key: str = "agent-1") -> LLMRequest:
    messages = [PromptMessage(Role.SYSTEM, "You are kind.")]
    messages += [PromptMessage(Role.USER, t) for t in texts]
    return LLMRequest(messages=tuple(messages), cache_key=key)


def completion_with(usage: dict[str, Any]) -> Raw:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
    return Raw(json.dumps(body))


BASE_USAGE = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}


@pytest.mark.parametrize(
    ("extra", "cached"),
    [
        ({"prompt_tokens_details": {"cached_tokens": 768}}, 768),  # OpenAI, Azure, vLLM, ...
        ({"prompt_cache_hit_tokens": 640, "prompt_cache_miss_tokens": 360}, 640),  # DeepSeek
        ({"cached_tokens": 512}, 512),  # Moonshot
        ({"prompt_tokens_details": None}, 0),
        ({"prompt_tokens_details": {"cached_tokens": "lots"}}, 0),  # garbage is not a count
        ({"prompt_tokens_details": {"cached_tokens": 5000}}, 1000),  # never more than the prompt
        ({}, 0),
    ],
)
async def test_cached_tokens_are_read_from_every_providers_usage(
    extra: dict[str, Any], cached: int
) -> None:
    async with FakeOpenAI([completion_with(BASE_USAGE | extra)]) as server:
        llm = client(server)
        response = await llm.complete(request("hi"))
        await llm.close()
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.cached_tokens) == (1000, cached)


async def test_the_fake_counts_what_repeats_the_same_persons_previous_prompt() -> None:
    async with FakeOpenAI(lambda body: Completion(content="ok")) as server:
        llm = client(server)
        first = await llm.complete(request("Hello there", key="agent-1"))
        other = await llm.complete(request("Something else entirely", key="agent-2"))
        second = await llm.complete(request("Hello there", "And more", key="agent-1"))
        await llm.close()
    bodies = server.requests
    assert [b["prompt_cache_key"] for b in bodies] == ["agent-1", "agent-2", "agent-1"]
    assert first.usage is not None and first.usage.cached_tokens == 0
    assert other.usage is not None and other.usage.cached_tokens == 0
    assert second.usage is not None
    repeated = common_prefix(prompt_text(bodies[0]), prompt_text(bodies[2]))
    assert repeated >= len("You are kind.Hello there")
    assert second.usage.cached_tokens == repeated // 4 > 0
    assert second.usage.prompt_tokens == -(-len(prompt_text(bodies[2])) // 4)


async def test_no_cache_key_unless_asked() -> None:
    async with FakeOpenAI(lambda body: Completion(content="ok")) as server:
        llm = client(server, send_cache_key=False)
        await llm.complete(request("hi"))
        await llm.close()
    assert "prompt_cache_key" not in server.requests[0]


def test_prompt_cache_key_auto_means_openai_itself() -> None:
    from config import ConfigError, load_settings  # noqa: PLC0415

    def sends(env: dict[str, str]) -> bool:
        return load_settings(
            env={"OPENAI_API_KEY": "k"} | env, dotenv_file=None
        ).llm.prompt_cache_key

    assert sends({})
    assert sends({"OPENAI_BASE_URL": "https://api.openai.com/v1"})
    assert not sends({"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    assert sends({"OPENAI_BASE_URL": "http://x/v1", "AGENTCORE_LLM__PROMPT_CACHE_KEY": "on"})
    assert not sends({"AGENTCORE_LLM__PROMPT_CACHE_KEY": "off"})
    with pytest.raises(
        ConfigError, match=r"^setting llm\.prompt_cache_key: expected auto, on or off"
    ):
        sends({"AGENTCORE_LLM__PROMPT_CACHE_KEY": "maybe"})


async def test_the_bot_records_what_the_provider_served_from_its_cache(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    async with FakeOpenAI(lambda body: Completion(content="Nice to hear from you.")) as server:
        llm = client(server)
        runtime = build_runtime(make_settings(), storage, llm, clock)
        for text in ("hello", "how are you?", "tell me something"):
            clock.advance(timedelta(minutes=1))
            await runtime.handle(message(clock, text, "telegram:5"))
        await llm.close()
    agent = await storage.load_agent(AgentKey("telegram", "5"))
    assert agent is not None
    [day] = await storage.usage(agent.id, date(2025, 1, 1))
    measured = server.cache.measured
    assert {m.key for m in measured} == {f"agent-{agent.id}"}
    assert day.calls == 3 and day.estimated_calls == 0
    assert day.prompt_tokens == sum(m.prompt_tokens for m in measured)
    assert day.cached_tokens == sum(m.cached_tokens for m in measured) > 0


async def test_a_streamed_answer_reports_cached_tokens_too() -> None:
    shown: list[str] = []

    async def sink(text: str) -> None:
        shown.append(text)

    async with FakeOpenAI(lambda body: Completion(content="Hello there")) as server:
        llm = client(server)
        await llm.complete(request("Hello there"))
        streamed = replace(request("Hello there", "And more"), stream=sink)
        response = await llm.complete(streamed)
        await llm.close()
    assert server.requests[1]["stream"] is True and shown[-1] == "Hello there"
    assert response.usage is not None
    assert response.usage.cached_tokens == server.cache.measured[1].cached_tokens > 0


class Shown:
    """A reply sink that keeps what a streamed answer showed."""

    def __init__(self) -> None:
        self.grown: list[str] = []

    async def notice(self, text: str) -> None:
        pass

    async def grow(self, text: str) -> None:
        self.grown.append(text)


def tea_model(prompted: bool) -> Callable[[dict[str, Any]], Completion]:
    """Saves "I like tea" with a tool call (written as text when tools are prompted)."""

    def answer(body: dict[str, Any]) -> Completion:
        said = last_user(body)
        if body["messages"][-1]["role"] == "tool" or "<tool_response>" in said:
            return Completion(content="Noted, you like tea.")
        if "tea" not in said:
            return Completion(content="Nice to hear from you.")
        arguments = {"label": "human", "content": "Likes tea"}
        if prompted:
            written = json.dumps({"name": "core_memory_append", "arguments": arguments})
            return Completion(content=f"<tool_call>\n{written}\n</tool_call>")
        return Completion(tool_calls=[("core_memory_append", arguments)])

    return answer


@pytest.mark.parametrize(
    ("tools", "stream"), [("prompted", False), ("prompted", True), ("native", True)]
)
async def test_prompted_tools_and_streamed_answers_record_the_cache_too(
    storage: SQLiteStorage, clock: ManualClock, tools: str, stream: bool
) -> None:
    prompted = tools == "prompted"
    settings = make_settings(llm={"tools": ToolMode(tools)}, agent={"stream": stream})
    async with FakeOpenAI(tea_model(prompted)) as server:
        llm = client(server)
        runtime = build_runtime(settings, storage, llm, clock)
        for text in ("hello", "I like tea", "what do I like?"):
            clock.advance(timedelta(minutes=1))
            shown = Shown()
            reply = await runtime.handle(message(clock, text, "telegram:5"), shown)
            assert "<tool_call>" not in reply.text and bool(shown.grown) == stream
        await llm.close()
    assert all(("tools" in body) != prompted for body in server.requests)
    assert all(body.get("stream", False) == stream for body in server.requests)
    agent = await storage.load_agent(AgentKey("telegram", "5"))
    assert agent is not None
    assert "Likes tea" in {b.label: b.value for b in await storage.list_blocks(agent.id)}["human"]
    [day] = await storage.usage(agent.id, date(2025, 1, 1))
    measured = server.cache.measured
    assert day.calls == len(measured) == 4 and day.estimated_calls == 0
    assert day.prompt_tokens == sum(m.prompt_tokens for m in measured)
    assert day.cached_tokens == sum(m.cached_tokens for m in measured) > 0
    # Every request after the first repeats most of the one before it, tool steps included.
    assert all(m.cached_tokens > 0.8 * m.prompt_tokens for m in measured[1:])
