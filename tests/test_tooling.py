"""Tool calling with any endpoint: the wrapper the agent loop talks to (prompted tools, auto
fallback, answers read into calls), the openai client's side of it (refusals, object arguments,
reasoning fields) and the endpoint check's diagnoses."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import pytest

from agentcore.agent import EMPTY_REPLY
from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse, LLMToolsRejected, ToolSpec
from agentcore.llm.check import check_endpoint
from agentcore.llm.fake import FunctionLLM, ScriptedLLM, reply
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.llm.tooling import (
    PROMPTED_LAST_STEP,
    ToolCallingLLM,
    ToolMode,
    prompted_request,
)
from agentcore.messages import PromptMessage, Role, ToolCall
from agentcore.runtime import NOT_SET_UP
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ReplyKind
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import Completion, Error, FakeOpenAI
from tests.process import bot_env, spawn_bot

TOOL = ToolSpec(
    "conversation_search",
    "Search.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
HISTORY = (
    PromptMessage(Role.SYSTEM, "You are helpful."),
    PromptMessage(Role.USER, "What did I say about Ana?"),
    PromptMessage(
        Role.ASSISTANT,
        "Let me look.",
        (ToolCall("c1", "conversation_search", '{"query": "Ana"}'), ToolCall("c2", "x", "{bad")),
    ),
    PromptMessage(Role.TOOL, "1 message found", tool_call_id="c1"),
    PromptMessage(Role.TOOL, "Error: no tool named 'x'", tool_call_id="c2"),
)


def refusing(*_: object) -> LLMResponse:
    raise LLMToolsRejected("Error code: 400 - model does not support tools")


# --------------------------------------------------------------------- prompted requests


def test_prompted_request_writes_tools_and_calls_as_text() -> None:
    wire = prompted_request(LLMRequest(HISTORY, (TOOL,)))
    assert wire.tools == ()
    system, _, assistant, results = wire.messages
    assert system.content is not None and system.content.startswith("You are helpful.\n\n# Tools")
    assert json.loads(system.content.splitlines()[-1])["name"] == "conversation_search"
    assert assistant.role is Role.ASSISTANT and assistant.tool_calls == ()
    assert assistant.content == (
        "Let me look.\n<tool_call>\n"
        '{"name": "conversation_search", "arguments": {"query": "Ana"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "x", "arguments": "{bad"}\n</tool_call>'
    )
    assert results.role is Role.USER  # both results in one message, as templates render them
    assert results.content == (
        "<tool_response>\n1 message found\n</tool_response>\n"
        "<tool_response>\nError: no tool named 'x'\n</tool_response>"
    )


def test_prompted_last_step_asks_for_plain_text() -> None:
    wire = prompted_request(LLMRequest(HISTORY[:2], (TOOL,), allow_tools=False))
    assert wire.messages[-1] == PromptMessage(Role.SYSTEM, PROMPTED_LAST_STEP)


# --------------------------------------------------------------------- the wrapper


async def test_auto_falls_back_to_prompted_once_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[LLMRequest] = []

    def endpoint(request: LLMRequest) -> LLMResponse:
        seen.append(request)
        if request.tools:
            refusing()
        return reply('<tool_call>{"name": "conversation_search", "arguments": {"query": "Ana"}}')

    model = ToolCallingLLM(FunctionLLM(endpoint), ToolMode.AUTO)
    with caplog.at_level(logging.WARNING):
        first = await model.complete(LLMRequest(HISTORY[:2], (TOOL,)))
        await model.complete(LLMRequest(HISTORY[:2], (TOOL,)))
    assert model.prompted and [bool(r.tools) for r in seen] == [True, False, False]
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("conversation_search", '{"query": "Ana"}')
    ]
    assert first.content is None
    warnings = [r for r in caplog.records if "does not take tool definitions" in r.message]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


async def test_native_mode_reports_the_refusal_as_a_configuration_problem(
    storage: SQLiteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(llm={"tools": ToolMode.NATIVE})
    runtime = build_runtime(settings, storage, FunctionLLM(refusing), clock)
    with caplog.at_level(logging.ERROR):
        answer = await runtime.handle(message(clock, "hello"))
    assert answer.text == NOT_SET_UP and answer.kind is ReplyKind.ERROR
    assert any('set [llm] tools = "prompted"' in r.message for r in caplog.records)
    agent = await storage.load_agent(AgentKey("console", "brad"))
    assert agent is not None and [m.content for m in await storage.all_messages(agent.id)] == [
        "hello"
    ]


async def test_prompted_mode_never_sends_tools() -> None:
    llm = ScriptedLLM([reply("Hi!")])
    model = ToolCallingLLM(llm, ToolMode.PROMPTED)
    assert (await model.complete(LLMRequest(HISTORY[:2], (TOOL,)))).content == "Hi!"
    assert llm.requests[0].tools == () and "# Tools" in (llm.requests[0].messages[0].content or "")


async def test_calls_written_on_the_last_step_are_dropped() -> None:
    written = 'Sure.\n<tool_call>{"name": "conversation_search", "arguments": {}}</tool_call>'
    model = ToolCallingLLM(ScriptedLLM([reply(written)]), ToolMode.NATIVE)
    response = await model.complete(LLMRequest(HISTORY[:2], (TOOL,), allow_tools=False))
    assert response == LLMResponse("Sure.", (), None)


async def test_requests_without_tools_only_lose_reasoning() -> None:
    text = '<think>hm</think>{"name": "conversation_search", "arguments": {}}'
    model = ToolCallingLLM(ScriptedLLM([reply(text)]), ToolMode.AUTO)
    response = await model.complete(LLMRequest(HISTORY[:2]))  # e.g. a summary request
    assert response.content == '{"name": "conversation_search", "arguments": {}}'


# --------------------------------------------------------------------- through the agent


async def test_a_broken_text_call_goes_back_to_the_model_not_to_the_person(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    broken = '<tool_call>\n{"name": "core_memory_append", "arguments": {"label": "human"\n'
    llm = ScriptedLLM([reply(broken), reply("Sorry, saved now.")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    answer = await runtime.handle(message(clock, "My name is Brad"))
    assert answer.text == "Sorry, saved now."
    result = llm.requests[1].messages[-1]
    assert result.role is Role.TOOL and result.content is not None
    assert result.content.startswith("Error: arguments are not valid JSON")


async def test_an_answer_that_is_only_reasoning_is_the_usual_empty_reply(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = ScriptedLLM([reply("<think>\nThey said hi. I could answer with")])
    runtime = build_runtime(make_settings(), storage, llm, clock)
    assert (await runtime.handle(message(clock, "hi"))).text == EMPTY_REPLY
    agent = await storage.load_agent(AgentKey("console", "brad"))
    assert agent is not None
    stored = [m.content for m in await storage.all_messages(agent.id)]
    assert stored == ["hi", EMPTY_REPLY]
    assert await storage.search_messages(agent.id, "answer with") == []


# --------------------------------------------------------------------- the openai client


def client(base_url: str, model: str = "gpt-4o-mini", key: str = "sk-test") -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model=model, base_url=base_url, api_key=key, deadline=5.0, max_retries=0
    )


@pytest.mark.parametrize("refuses", ["tools", "auto tools", "tool_choice"])
async def test_each_servers_refusal_is_recognised(refuses: str) -> None:
    request = LLMRequest(HISTORY[:2], (TOOL,), allow_tools=False)  # sends tool_choice="none"
    if refuses == "auto tools":
        request = LLMRequest(HISTORY[:2], (TOOL,))  # vLLM refuses the default "auto"
    async with FakeOpenAI([Completion(content="unused")], refuses=refuses) as server:
        llm = client(server.base_url)
        with pytest.raises(LLMToolsRejected):
            await llm.complete(request)
        await llm.close()


async def test_other_bad_requests_are_not_taken_for_refusals() -> None:
    async with FakeOpenAI([Error(400, "context length exceeded")]) as server:
        llm = client(server.base_url)
        with pytest.raises(Exception) as caught:
            await llm.complete(LLMRequest(HISTORY[:2], (TOOL,)))
        await llm.close()
    assert not isinstance(caught.value, LLMToolsRejected)


async def test_object_arguments_and_reasoning_fields() -> None:
    answer = Completion(
        content=None,
        tool_calls=[("conversation_search", {"query": "Ana", "request_heartbeat": True})],
        reasoning_content="The person wants Ana.",
        reasoning="The person wants Ana.",
        arguments_as_objects=True,
    )
    async with FakeOpenAI([answer]) as server:
        llm = client(server.base_url)
        response = await llm.complete(LLMRequest(HISTORY[:2], (TOOL,)))
        await llm.close()
    [found] = response.tool_calls
    assert json.loads(found.arguments) == {"query": "Ana", "request_heartbeat": True}
    assert response.content is None  # reasoning_content is never content


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_reasoning_in_either_field_is_never_the_answer(streamed: bool) -> None:
    """``reasoning_content`` (DeepSeek, vLLM, llama.cpp) and ``reasoning`` (OpenRouter)."""
    answer = Completion(
        content="Ana lives in Lisbon.", reasoning_content="Thought one.", reasoning="Thought two."
    )
    shown: list[str] = []

    async def sink(text: str) -> None:
        shown.append(text)

    async with FakeOpenAI([answer]) as server:
        llm = client(server.base_url)
        response = await llm.complete(
            LLMRequest(HISTORY[:2], (TOOL,), stream=sink if streamed else None)
        )
        await llm.close()
    assert response.content == "Ana lives in Lisbon."
    assert not any("Thought" in text for text in shown)
    assert shown[-1:] == (["Ana lives in Lisbon."] if streamed else [])


# --------------------------------------------------------------------- the endpoint check


async def diagnose(server_or_url: FakeOpenAI | str, **options: str) -> tuple[str | None, bool]:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    llm = client(url, **options)
    model = ToolCallingLLM(llm, ToolMode.AUTO)
    report = await check_endpoint(llm, model)
    await llm.close()
    return report.problem, model.prompted


async def test_check_passes_a_good_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeOpenAI([]) as server:
        with caplog.at_level(logging.INFO):
            assert await diagnose(server) == (None, False)
    assert len(server.checks) == 1 and server.checks[0]["tools"]
    assert any("model endpoint ok" in r.message for r in caplog.records)


async def test_check_names_the_fix_for_each_problem() -> None:
    async with FakeOpenAI([], models=["llama3.1:8b", "qwen2.5:7b"]) as server:
        problem, _ = await diagnose(server)
        assert problem is not None and "set AGENTCORE_MODEL to one of: llama3.1:8b, qwen2.5:7b" in (
            problem
        )
        problem, _ = await diagnose(server.base_url.removesuffix("/v1"), model="qwen2.5:7b")
        assert problem is not None and "OPENAI_BASE_URL usually ends in /v1" in problem
    async with FakeOpenAI([], key="sk-the-right-one") as server:
        problem, _ = await diagnose(server)
        assert problem is not None and "set OPENAI_API_KEY to a valid key" in problem
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    problem, _ = await diagnose(closed)
    assert problem is not None and "cannot reach the model endpoint" in problem


async def test_check_moves_auto_to_prompted_before_anyone_writes() -> None:
    for refuses in ("tools", "auto tools", "tool_choice"):
        async with FakeOpenAI([], refuses=refuses) as server:
            assert await diagnose(server) == (None, True)


async def test_max_tokens_is_sent_only_when_set() -> None:
    async with FakeOpenAI([Completion(content="a"), Completion(content="b")]) as server:
        plain = client(server.base_url)
        await plain.complete(LLMRequest(HISTORY[:2]))
        capped = OpenAICompatibleLLM(
            model="gpt-4o-mini", base_url=server.base_url, api_key=None, max_tokens=256
        )
        await capped.complete(LLMRequest(HISTORY[:2]))
        await plain.close()
        await capped.close()
    assert "max_tokens" not in server.requests[0] and server.requests[1]["max_tokens"] == 256


async def test_an_endpoint_check_that_hangs_never_delays_the_first_answer(tmp_path: Path) -> None:
    """``python -m bots``: the check runs in the background; a model list that never comes
    holds up no one, and the bot still stops cleanly."""
    async with FakeOpenAI(lambda _body: Completion("Hello!"), models_hang=True) as server:
        proc = await spawn_bot(env=bot_env(tmp_path, server.base_url), cwd=tmp_path)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(b"hi\n")
            await proc.stdin.drain()
            first = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert first == b"Hello!\n"
            async with asyncio.timeout(10):  # the check began (it may trail the answer): hangs
                while not server.models_asked:  # noqa: ASYNC110  (another process's request)
                    await asyncio.sleep(0.01)
            proc.stdin.close()
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        err = (await proc.stderr.read()).decode()
    assert code == 0, err
    assert "Traceback" not in err and "model endpoint ok" not in err
