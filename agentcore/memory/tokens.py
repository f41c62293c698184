"""Local token estimates, corrected by the usage the provider reports.

No tokenizer files are downloaded: we count characters, divide by a ratio, and learn a correction
factor from each response's ``usage.prompt_tokens``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from agentcore.llm.base import LLMRequest, LLMResponse, ToolSpec
from agentcore.messages import ToolCall

_CHARS_PER_TOKEN = 4.0
# What an image costs (OpenAI: 85 + 170 per 512-px tile of the image scaled to 768 px on its
# short side; a typical photo is four tiles). Local vision models are in the same range.
IMAGE_TOKENS = 765
_PER_MESSAGE_OVERHEAD = 4  # role markers and separators in the chat template
_LEARNING_RATE = 0.3
_MIN_FACTOR, _MAX_FACTOR = 0.3, 4.0


class TokenEstimator:
    def __init__(self) -> None:
        self._factor = 1.0
        # The tool list is the same tuple on every request; measure it once.
        self._tools_chars: tuple[tuple[ToolSpec, ...], int] = ((), 0)

    @property
    def factor(self) -> float:
        return self._factor

    def estimate(self, request: LLMRequest) -> int:
        chars = 0
        for message in request.messages:
            chars += _chars(message.content, message.tool_calls)
        chars += self._chars_of_tools(request.tools)
        raw = chars / _CHARS_PER_TOKEN + _PER_MESSAGE_OVERHEAD * len(request.messages)
        raw += IMAGE_TOKENS * sum(len(m.images) for m in request.messages)
        return math.ceil(raw * self._factor)

    def estimate_answer(self, response: LLMResponse) -> int:
        """A model's answer (its text and tool calls), for a provider that reports no usage."""
        chars = _chars(response.content, response.tool_calls)
        return math.ceil(chars / _CHARS_PER_TOKEN * self._factor)

    def _chars_of_tools(self, tools: tuple[ToolSpec, ...]) -> int:
        cached_tools, chars = self._tools_chars
        if tools is not cached_tools:
            chars = sum(len(json.dumps(t.parameters)) + len(t.description) for t in tools)
            self._tools_chars = (tools, chars)
        return chars

    def observe(self, estimated: int, reported: int) -> None:
        """Move the correction factor towards what the provider actually counted."""
        if estimated <= 0 or reported <= 0:
            return
        target = self._factor * reported / estimated
        blended = (1 - _LEARNING_RATE) * self._factor + _LEARNING_RATE * target
        self._factor = min(_MAX_FACTOR, max(_MIN_FACTOR, blended))


def _chars(content: str | None, tool_calls: Iterable[ToolCall]) -> int:
    """The characters of a message's text and tool calls."""
    return len(content or "") + sum(len(c.name) + len(c.arguments) for c in tool_calls)
