"""The real ``openai`` SDK path, against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import (
    LLMAuthError,
    LLMBadResponse,
    LLMRateLimited,
    LLMRequest,
    LLMTimeout,
    LLMUnavailable,
    ToolSpec,
)
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.messages import PromptMessage, Role, ToolCall
from agentcore.runtime import LLM_FAILED
from agentcore.storage.sqlite import SQLiteStorage
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import (
    Action,
    Completion,
    Error,
    FakeOpenAI,
    Hang,
    Raw,
    last_user,
    system,
)

REQUEST = LLMRequest(
    messages=(PromptMessage(Role.SYSTEM, "be nice"), PromptMessage(Role.USER, "hi")),
    tools=(ToolSpec("send_message", "send", {"type": "object", "properties": {}}),),
)


def client(server: FakeOpenAI, **kwargs: object) -> OpenAICompatibleLLM:
    options: dict[str, object] = {"deadline": 5.0, "max_retries": 2} | kwargs
    return OpenAICompatibleLLM(
        model="fake-model",
        base_url=server.base_url,
        api_key="sk-test",
        **options,  # type: ignore[arg-type]
    )


async def test_content_tool_calls_and_usage_are_parsed() -> None:
    script = [
        Completion(
            content="thinking",
            tool_calls=[("send_message", {"message": "hey"})],
            prompt_tokens=321,
            completion_tokens=7,
        )
    ]
    async with FakeOpenAI(script) as server:
        llm = client(server)
        response = await llm.complete(REQUEST)
        await llm.close()
    assert response.content == "thinking"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("send_message", '{"message": "hey"}')
    ]
    assert response.usage is not None and response.usage.prompt_tokens == 321
    sent = server.requests[0]
    assert sent["model"] == "fake-model" and sent["tools"][0]["function"]["name"] == "send_message"
    assert "tool_choice" not in sent
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


async def test_history_with_tool_calls_goes_out_in_wire_shape() -> None:
    history = LLMRequest(
        messages=(
            PromptMessage(Role.SYSTEM, "s"),
            PromptMessage(Role.USER, "u"),
            PromptMessage(Role.ASSISTANT, None, (ToolCall("c9", "archival_memory_search", "{}"),)),
            PromptMessage(Role.TOOL, "nothing", tool_call_id="c9"),
        ),
        tools=REQUEST.tools,
        allow_tools=False,
    )
    async with FakeOpenAI([Completion(content="ok")]) as server:
        llm = client(server)
        await llm.complete(history)
        await llm.close()
    sent = server.requests[0]
    assert sent["tool_choice"] == "none"
    assert sent["messages"][2]["tool_calls"][0]["id"] == "c9"
    assert sent["messages"][3] == {"role": "tool", "content": "nothing", "tool_call_id": "c9"}


async def test_server_errors_are_retried() -> None:
    script: list[Action] = [Error(500), Error(503), Completion(content="third time lucky")]
    async with FakeOpenAI(script) as server:
        llm = client(server)
        response = await llm.complete(REQUEST)
        await llm.close()
    assert response.content == "third time lucky" and len(server.requests) == 3


async def test_429_honours_retry_after() -> None:
    script: list[Action] = [Error(429, "slow down", {"retry-after": "1"}), Completion(content="ok")]
    async with FakeOpenAI(script) as server:
        llm = client(server)
        started = time.monotonic()
        await llm.complete(REQUEST)
        waited = time.monotonic() - started
        await llm.close()
    assert waited >= 0.9 and len(server.requests) == 2


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        ([Error(500)] * 3, LLMUnavailable),
        ([Error(429, headers={"retry-after": "0"})] * 3, LLMRateLimited),
        ([Error(401, "bad key")], LLMAuthError),
        ([Error(404, "no such model")], LLMAuthError),
        ([Error(400, "context too long")], LLMBadResponse),
        ([Raw("<html>gateway</html>", content_type="text/html")], LLMBadResponse),
        ([Raw("{not json")], LLMBadResponse),
        ([Raw('{"choices": []}')], LLMBadResponse),
    ],
)
async def test_failures_map_to_core_errors(actions: list[object], error: type[Exception]) -> None:
    async with FakeOpenAI(actions) as server:  # type: ignore[arg-type]
        llm = client(server)
        with pytest.raises(error):
            await llm.complete(REQUEST)
        await llm.close()


async def test_a_hanging_server_gives_up_within_the_deadline() -> None:
    async with FakeOpenAI(lambda body: Hang(30)) as server:
        llm = client(server, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(LLMTimeout):
            await llm.complete(REQUEST)
        assert time.monotonic() - started < 3.0
        await llm.close()


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatibleLLM(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=None, deadline=5, max_retries=0
    )
    with pytest.raises(LLMUnavailable):
        await llm.complete(REQUEST)
    await llm.close()


async def test_a_turn_through_the_real_client(storage: SQLiteStorage, clock: ManualClock) -> None:
    """Tool call → tool result → final answer, all over HTTP; then a failure keeps the message."""

    def responder(body: dict[str, Any]) -> Completion | Error:
        messages = body["messages"]
        if last_user(body) == "fail":
            return Error(500)
        if messages[-1]["role"] == "tool":
            return Completion(content="Saved your name.")
        return Completion(tool_calls=[("core_memory_append", {"label": "human", "content": "Ann"})])

    async with FakeOpenAI(responder) as server:
        llm = client(server, max_retries=0)
        runtime = build_runtime(make_settings(), storage, llm, clock)
        assert (await runtime.handle(message(clock, "I'm Ann"))).text == "Saved your name."
        assert "Ann" in system(server.requests[-1])
        assert (await runtime.handle(message(clock, "fail"))).text == LLM_FAILED
        agent = await storage.load_agent(message(clock, "x").key)
        assert agent is not None
        assert (await storage.all_messages(agent.id))[-1].content == "fail"
        await runtime.shutdown()
