"""Tool calling that works with any endpoint: the agent loop always sees native-looking calls.

Every answer is read the same way: reasoning (``<think>``) is removed, and tool calls the model
wrote as text (``agentcore.llm.textcalls``) become ordinary calls, so they are executed, stored
and exported exactly like native ones and never reach the person.

How tools reach the model is the ``[llm] tools`` setting:

- ``native``: the API's ``tools`` parameter;
- ``prompted``: the tools are described in the system prompt, earlier calls and results are
  written into the history as text, and calls are read from the answer's text;
- ``auto`` (default): native until the endpoint refuses tool definitions (Ollama's "does not
  support tools", vLLM's "auto tool choice requires --enable-auto-tool-choice", a 400 on
  ``tool_choice``), then prompted for good, with one WARNING line.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import replace

from agentcore.llm.base import (
    ClosableLLM,
    LLMRequest,
    LLMResponse,
    LLMToolsRejected,
    ToolSpec,
)
from agentcore.llm.textcalls import read_tool_calls, strip_reasoning
from agentcore.messages import PromptMessage, Role, ToolCall

log = logging.getLogger(__name__)

PROMPTED_TOOLS = """# Tools
You can call tools. To call one, write a block like this, with the arguments as a JSON object:
<tool_call>
{{"name": "tool_name", "arguments": {{"argument": "value"}}}}
</tool_call>
Write one block per call. Each result comes back to you inside <tool_response> tags; then go
on. When you answer the person, write plain text with no tags.

The tools:
{tools}"""
PROMPTED_LAST_STEP = "Answer the person now, in plain text. Do not call any more tools."


class ToolMode(enum.Enum):
    AUTO = "auto"
    NATIVE = "native"
    PROMPTED = "prompted"


class ToolCallingLLM:
    """Wraps the model client: sends tools the way the endpoint takes them and reads every
    answer into content and tool calls (see the module docstring)."""

    def __init__(self, inner: ClosableLLM, mode: ToolMode) -> None:
        self._inner = inner
        self._mode = mode
        self._prompted = mode is ToolMode.PROMPTED
        self._told_text_calls = False

    @property
    def prompted(self) -> bool:
        return self._prompted

    def tools_refused(self, detail: str) -> None:
        """The endpoint refused tool definitions: in auto mode switch to prompted tools (one
        WARNING); in native mode tell the operator how to fix it."""
        if self._prompted:
            return
        if self._mode is ToolMode.AUTO:
            self._prompted = True
            log.warning(
                "the model endpoint does not take tool definitions (%s); describing the tools "
                'in the prompt instead ([llm] tools = "prompted")',
                detail,
            )
        else:
            log.error(
                "the model endpoint does not take tool definitions (%s): set [llm] tools = "
                '"prompted" or "auto" (AGENTCORE_LLM__TOOLS)',
                detail,
            )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.tools and not self._prompted:
            try:
                return self._read(await self._inner.complete(request), request)
            except LLMToolsRejected as exc:
                self.tools_refused(str(exc))
                if not self._prompted:
                    raise
        wire = prompted_request(request) if request.tools else request
        return self._read(await self._inner.complete(wire), request)

    async def close(self) -> None:
        await self._inner.close()

    def _read(self, response: LLMResponse, request: LLMRequest) -> LLMResponse:
        """Content without reasoning; calls written as text turned into calls."""
        text = strip_reasoning(response.content or "")
        calls = response.tool_calls
        if not calls and request.tools:
            found = read_tool_calls(text, [t.name for t in request.tools])
            text = found.text
            calls = tuple(ToolCall(new_call_id(), c.name, c.arguments) for c in found.calls)
            if calls and not request.allow_tools:
                log.info("ignoring %d tool call(s) written on the last step", len(calls))
                calls = ()
            elif calls and not self._told_text_calls:
                self._told_text_calls = True
                log.info("the model writes tool calls as text; reading them as calls")
        return LLMResponse(text or None, calls, response.usage)


def new_call_id() -> str:
    return f"call_{os.urandom(8).hex()}"


# --------------------------------------------------------------------- prompted tools


def prompted_request(request: LLMRequest) -> LLMRequest:
    """The request for an endpoint without tool support: the tools described in the first
    system message (a stable prefix), calls and results as text, and no ``tools`` parameter."""
    messages = list(_as_text_history(request.messages))
    if messages and messages[0].role is Role.SYSTEM:
        described = f"{messages[0].content or ''}\n\n{describe_tools(request.tools)}"
        messages[0] = PromptMessage(Role.SYSTEM, described)
    else:
        messages.insert(0, PromptMessage(Role.SYSTEM, describe_tools(request.tools)))
    if not request.allow_tools:
        messages.append(PromptMessage(Role.SYSTEM, PROMPTED_LAST_STEP))
    return replace(request, messages=tuple(messages), tools=())


def describe_tools(tools: Sequence[ToolSpec]) -> str:
    lines = [
        json.dumps(
            {"name": t.name, "description": t.description, "parameters": t.parameters},
            ensure_ascii=False,
        )
        for t in tools
    ]
    return PROMPTED_TOOLS.format(tools="\n".join(lines))


def written_call(call: ToolCall) -> str:
    """A stored call as the model is asked to write one."""
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError:
        arguments = call.arguments  # a broken call stays visibly broken
    body = json.dumps({"name": call.name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _as_text_history(messages: Sequence[PromptMessage]) -> list[PromptMessage]:
    """Assistant calls become ``<tool_call>`` text; results become ``<tool_response>`` user
    messages (consecutive ones merged), as Hermes-style chat templates render them."""
    out: list[PromptMessage] = []
    for message in messages:
        if message.role is Role.ASSISTANT and message.tool_calls:
            parts = [message.content or "", *(written_call(c) for c in message.tool_calls)]
            out.append(PromptMessage(Role.ASSISTANT, "\n".join(p for p in parts if p)))
        elif message.role is Role.TOOL:
            response = f"<tool_response>\n{message.content or ''}\n</tool_response>"
            last = out[-1] if out else None
            if (
                last
                and last.role is Role.USER
                and (last.content or "").endswith("</tool_response>")
            ):
                out[-1] = PromptMessage(Role.USER, f"{last.content}\n{response}")
            else:
                out.append(PromptMessage(Role.USER, response))
        else:
            out.append(message)
    return out
