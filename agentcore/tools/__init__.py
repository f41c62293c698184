"""The agent's tools and the one place that runs them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from agentcore.llm.base import ToolSpec
from agentcore.messages import ToolCall
from agentcore.storage.protocols import StorageError
from agentcore.tools import archival, core_memory, recall, schedule
from agentcore.tools.base import Tool, ToolContext, ToolError, parse_arguments, schema

log = logging.getLogger(__name__)

SEND_MESSAGE = "send_message"


async def send_message(ctx: ToolContext, message: str) -> str:
    # The agent loop ends the turn on this call and delivers ``message``; this is its result.
    return "Sent."


SEND_MESSAGE_TOOL = Tool(
    SEND_MESSAGE,
    "Send your reply to the person and end your turn. (Answering in plain text works too.)",
    schema(["message"], message={"type": "string", "description": "The reply to send."}),
    send_message,
)
MEMORY_TOOLS: tuple[Tool, ...] = core_memory.TOOLS + archival.TOOLS + recall.TOOLS
SCHEDULE_TOOLS: tuple[Tool, ...] = schedule.TOOLS


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = MEMORY_TOOLS) -> None:
        self._tools = {tool.name: tool for tool in (*tools, SEND_MESSAGE_TOOL)}
        self.specs: tuple[ToolSpec, ...] = tuple(tool.spec for tool in self._tools.values())

    def bind(self, call: ToolCall) -> tuple[Tool, dict[str, Any]]:
        """The tool a call names and its checked arguments; ``ToolError`` if either is wrong."""
        if not call.name:
            raise ToolError(
                'the call names no tool; write it as {"name": "<tool>", "arguments": {...}}'
            )
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self._tools))
            raise ToolError(f"there is no tool named {call.name!r}. Available tools: {known}.")
        return tool, parse_arguments(tool, call.arguments)

    async def execute(self, ctx: ToolContext, call: ToolCall) -> str:
        """Run one call and return its result text; every failure becomes an ``Error:`` hint."""
        try:
            tool, args = self.bind(call)
            return await tool.run(ctx, **args)
        except ToolError as exc:
            return f"Error: {exc}"
        except StorageError:
            raise  # the store itself is failing: the turn cannot go on, the runtime says so
        except Exception:
            log.exception("tool %s failed on agent %s", call.name, ctx.agent_id)
            return f"Error: {call.name} failed unexpectedly; try something else."


__all__ = [
    "MEMORY_TOOLS",
    "SCHEDULE_TOOLS",
    "SEND_MESSAGE",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
]
