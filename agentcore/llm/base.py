"""The ``LLMClient`` protocol, its request/response types and the core's own error types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentcore.messages import PromptMessage, ToolCall


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


# Receives the answer's visible text so far, each time it grows (see ``LLMRequest.stream``).
TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LLMRequest:
    messages: tuple[PromptMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    # False on the last allowed step: the model must answer in text now.
    allow_tools: bool = True
    # Set: stream the answer, and call this with the text that may be shown so far (never
    # reasoning or a tool call written as text; nothing once the model calls a tool). The
    # response is the same as without it.
    stream: TextSink | None = field(default=None, compare=False)
    # Whom the request serves, so a provider can route a person's requests to one prompt cache
    # (OpenAI's ``prompt_cache_key``). Opaque: never a platform's user id.
    cache_key: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """What the provider counted for one call. ``cached_tokens`` is the part of the prompt it
    served from its prompt cache (billed at a discount); 0 if it says nothing about caching."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LLMResponse:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None


class LLMClient(Protocol):
    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One chat completion. Raises ``LLMError`` subclasses, never SDK exceptions."""
        ...


class ClosableLLM(LLMClient, Protocol):
    async def close(self) -> None: ...


class LLMError(Exception):
    """The model could not give an answer. ``str(err)`` is for logs, never for users."""


class LLMTimeout(LLMError):
    pass


class LLMUnavailable(LLMError):
    """Connection refused, 5xx after retries, or the endpoint is otherwise unreachable."""


class LLMRateLimited(LLMError):
    pass


class LLMBadResponse(LLMError):
    """The endpoint answered with something that is not a usable completion."""


class LLMConfigError(LLMError):
    """The endpoint is not set up for this bot: an operator has to fix the configuration."""


class LLMAuthError(LLMConfigError):
    """The key or the model name was rejected."""


class LLMToolsRejected(LLMConfigError):
    """The endpoint refused the request's tool definitions (``tools`` or ``tool_choice``), as
    servers and models without tool support do."""
