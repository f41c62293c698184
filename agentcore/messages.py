"""Chat message primitives shared by storage, prompt compilation and the LLM seam."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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
class ImagePart:
    """An image shown to the model with a message (bytes never in ``repr``, so never logged)."""

    mime_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of a request to the model, in chat-completions shape."""

    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    images: tuple[ImagePart, ...] = ()  # a person's photos, for a model that can see
