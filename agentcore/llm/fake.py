"""A scripted, in-process model for tests and benchmarks (like Pydantic AI's FunctionModel).

``FunctionLLM`` answers each request by calling a function you give it; ``ScriptedLLM`` replays
a fixed list of responses. Both record every request they saw.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from agentcore.llm.base import LLMBadResponse, LLMRequest, LLMResponse, TextSink, Usage
from agentcore.llm.visible import VisibleText
from agentcore.memory.prompt import TURN_CONTEXT_START
from agentcore.messages import PromptMessage, Role, ToolCall

Responder = Callable[[LLMRequest], LLMResponse | Awaitable[LLMResponse]]
_call_ids = itertools.count(1)


def reply(text: str, *, prompt_tokens: int | None = None) -> LLMResponse:
    """A plain-text final answer."""
    usage = Usage(prompt_tokens, len(text) // 4) if prompt_tokens is not None else None
    return LLMResponse(content=text, usage=usage)


def call(name: str, arguments: dict[str, Any] | str | None = None, **kwargs: Any) -> LLMResponse:
    """A response that calls one tool. ``arguments`` may be raw (even invalid) JSON text."""
    return calls((name, arguments if arguments is not None else kwargs))


def calls(*items: tuple[str, dict[str, Any] | str]) -> LLMResponse:
    """A response that calls several tools in one step."""
    tool_calls = tuple(
        ToolCall(
            f"call_{next(_call_ids)}", name, args if isinstance(args, str) else json.dumps(args)
        )
        for name, args in items
    )
    return LLMResponse(content=None, tool_calls=tool_calls)


class FunctionLLM:
    """Answers with ``responder(request)``. Every request is kept in ``requests`` for tests to
    inspect, unless ``record=False`` (benchmarks that send 100,000 messages measure the bot's
    memory, not this list's)."""

    def __init__(self, responder: Responder, *, record: bool = True) -> None:
        self._responder = responder
        self._record = record
        self.requests: list[LLMRequest] = []
        self.closed = False

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self._record:
            self.requests.append(request)
        result = self._responder(request)
        if inspect.isawaitable(result):
            result = await result
        if request.stream is not None and result.content and not result.tool_calls:
            await stream_words(result.content, request.stream)
        return result

    async def close(self) -> None:
        self.closed = True


async def stream_words(text: str, sink: TextSink) -> None:
    """Pass ``text`` to ``sink`` as a streaming endpoint would: growing a word at a time."""
    shown = VisibleText()
    for word in re.findall(r"\S+\s*", text):
        before = shown.shown
        if shown.feed(word) != before:
            await sink(shown.shown)


class ScriptedLLM(FunctionLLM):
    """Replays ``responses`` in order; running out is a test bug, reported as a bad response."""

    def __init__(self, responses: Iterable[LLMResponse]) -> None:
        self._script = list(responses)
        super().__init__(self._next)

    def _next(self, request: LLMRequest) -> LLMResponse:
        if not self._script:
            raise LLMBadResponse("ScriptedLLM ran out of responses")
        return self._script.pop(0)


def last_user_text(request: LLMRequest) -> str:
    """The newest user message in a request: handy in responder functions."""
    for message in reversed(request.messages):
        if message.role is Role.USER:
            return message.content or ""
    return ""


def last_message(request: LLMRequest) -> PromptMessage:
    """The newest message besides the turn context (the system message of memory metadata
    that follows the messages a turn answers): the person's message, a system event such as a
    reminder coming due, or a tool result."""
    context = TURN_CONTEXT_START
    return next(m for m in reversed(request.messages) if not (m.content or "").startswith(context))


def opens_turn(request: LLMRequest) -> bool:
    """True for a turn's first request: after the person's latest message come only system
    messages (the turn context), no tool steps yet."""
    for message in reversed(request.messages):
        if message.role is not Role.SYSTEM:
            return message.role is Role.USER
    return False


def system_text(request: LLMRequest) -> str:
    """Everything a request tells the model besides the conversation: its system messages (the
    stable prefix, and the turn context after the history), joined."""
    return "\n\n".join(m.content or "" for m in request.messages if m.role is Role.SYSTEM)
