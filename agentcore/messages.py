"""Chat message primitives shared by storage, prompt compilation and the LLM seam."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it (may be invalid)


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of a request to the model, in chat-completions shape."""

    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
