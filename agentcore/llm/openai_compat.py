"""``LLMClient`` over ``openai.AsyncOpenAI``: any OpenAI-compatible chat-completions endpoint
(OpenAI, Azure, OpenRouter, Ollama, vLLM, llama.cpp).

The SDK's own timeout and retries (with ``retry-after``) do the work; one outer deadline makes
sure the whole call, retries included, gives up within ``deadline`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import openai

from agentcore.llm.base import (
    LLMAuthError,
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMRequest,
    LLMResponse,
    LLMTimeout,
    LLMUnavailable,
    TextSink,
    ToolSpec,
    Usage,
)
from agentcore.llm.visible import VisibleText
from agentcore.messages import ImagePart, PromptMessage, Role, ToolCall
from agentcore.types import clean_text

log = logging.getLogger(__name__)

# Local servers (Ollama, llama.cpp) ignore the key but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"


def sdk_client(
    base_url: str | None, api_key: str | None, deadline: float, max_retries: int
) -> openai.AsyncOpenAI:
    """The SDK's client for an endpoint: its own timeout and retries (with retry-after)."""
    return openai.AsyncOpenAI(
        api_key=api_key or PLACEHOLDER_KEY,
        base_url=base_url or None,
        timeout=deadline,
        max_retries=max_retries,
    )


class OpenAICompatibleLLM:
    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        deadline: float = 30.0,
        max_retries: int = 2,
        temperature: float | None = None,
        send_cache_key: bool = False,
    ) -> None:
        self._model = model
        self._deadline = deadline
        self._temperature = temperature
        self._send_cache_key = send_cache_key
        self._client = sdk_client(base_url, api_key, deadline, max_retries)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        kwargs = self._request_kwargs(request)
        try:
            if request.stream is not None:
                return await self._streamed(kwargs, request.stream)
            async with asyncio.timeout(self._deadline):
                completion = await self._client.chat.completions.create(**kwargs)
        except TimeoutError as exc:
            raise LLMTimeout(f"no answer within {self._deadline:.0f}s") from exc
        except openai.OpenAIError as exc:
            raise translate_error(exc) from exc
        except ValueError as exc:  # a body that claims to be JSON and is not
            raise LLMBadResponse(f"unparseable answer from the model endpoint: {exc}") from exc
        return _parse(completion)

    async def _streamed(self, kwargs: dict[str, Any], sink: TextSink) -> LLMResponse:
        """The completion as server-sent events, the visible text passed to ``sink`` as it
        grows. The deadline holds for the first event and for each gap between events (an
        answer may take longer in all, while it visibly progresses)."""
        kwargs |= {"stream": True, "stream_options": {"include_usage": True}}
        answer = _StreamedAnswer()
        async with asyncio.timeout(self._deadline) as deadline:
            events = await self._client.chat.completions.create(**kwargs)
            async for chunk in events:
                deadline.reschedule(asyncio.get_running_loop().time() + self._deadline)
                shown = answer.add(chunk)
                if shown is not None:
                    await sink(shown)
        return answer.response()

    async def close(self) -> None:
        await self._client.close()

    def _request_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": [_wire_message(m) for m in request.messages],
        }
        if request.tools:
            kwargs["tools"] = [_wire_tool(t) for t in request.tools]
            if not request.allow_tools:
                kwargs["tool_choice"] = "none"
        if self._temperature is not None:
            kwargs["temperature"] = self._temperature
        if self._send_cache_key and request.cache_key:
            kwargs["prompt_cache_key"] = request.cache_key
        return kwargs


def translate_error(exc: openai.OpenAIError) -> LLMError:
    """Map the SDK's exceptions onto the core's, keeping the detail for the operator's log."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout(str(exc))
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(f"cannot reach the model endpoint: {exc}")
    if isinstance(exc, openai.RateLimitError):
        return LLMRateLimited(f"rate limited by the model endpoint: {exc.message}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMAuthError(f"the model endpoint rejected the API key: {exc.message}")
    if isinstance(exc, openai.NotFoundError):
        return LLMAuthError(f"model or endpoint not found (check AGENTCORE_MODEL): {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMUnavailable(f"model endpoint error {exc.status_code}: {exc.message}")
        return LLMBadResponse(
            f"model endpoint refused the request {exc.status_code}: {exc.message}"
        )
    return LLMBadResponse(f"unusable answer from the model endpoint: {exc}")


def _parse(completion: Any) -> LLMResponse:
    """Pull content, tool calls and usage out of a completion, whatever shape it arrived in."""
    try:
        message = completion.choices[0].message
        calls = tuple(
            ToolCall(
                call.id or f"call_{i}",
                clean_text(call.function.name or ""),
                clean_text(call.function.arguments or ""),
            )
            for i, call in enumerate(message.tool_calls or ())
            if getattr(call, "function", None) is not None
        )
        usage = completion.usage
    except (AttributeError, IndexError, TypeError) as exc:
        raise LLMBadResponse(f"malformed completion: {type(completion).__name__}") from exc
    return LLMResponse(
        content=clean_text(message.content) if message.content is not None else None,
        tool_calls=calls,
        usage=_usage(usage) if usage else None,
    )


def _usage(usage: Any) -> Usage:
    """The call's token counts, with the part of the prompt the provider served from its
    prompt cache, wherever it reports it: ``prompt_tokens_details.cached_tokens`` (OpenAI,
    Azure, OpenRouter, vLLM, llama.cpp, Anthropic's and Gemini's OpenAI layers),
    ``prompt_cache_hit_tokens`` (DeepSeek) or a top-level ``cached_tokens`` (Moonshot)."""
    prompt = _count(getattr(usage, "prompt_tokens", 0))
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (
        _count(getattr(details, "cached_tokens", 0))
        or _count(getattr(usage, "prompt_cache_hit_tokens", 0))
        or _count(getattr(usage, "cached_tokens", 0))
    )
    return Usage(prompt, _count(getattr(usage, "completion_tokens", 0)), min(cached, prompt))


def _count(value: Any) -> int:
    """A token count as reported; anything that is not a count (absent, null, text) is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class _StreamedAnswer:
    """A streamed completion put back together: content, tool calls (by index), usage."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index → [id, name, arguments]
        self._usage: Usage | None = None
        self._visible = VisibleText()

    def add(self, chunk: Any) -> str | None:
        """Take one event; the visible text if it grew, else None."""
        try:
            if chunk.usage is not None:
                usage = chunk.usage
                self._usage = _usage(usage)
            if not chunk.choices:
                return None
            delta = chunk.choices[0].delta
            for call in delta.tool_calls or ():
                entry = self._calls.setdefault(call.index or 0, ["", "", ""])
                entry[0] = call.id or entry[0]
                if call.function is not None:
                    entry[1] += call.function.name or ""
                    entry[2] += call.function.arguments or ""
            text = delta.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMBadResponse(f"malformed stream event: {type(chunk).__name__}") from exc
        self._content.append(text)
        if not text or self._calls:
            return None  # a tool step shows nothing (typing only)
        before = self._visible.shown
        shown = self._visible.feed(text)
        return shown if shown != before else None

    def response(self) -> LLMResponse:
        content = "".join(self._content)
        calls = tuple(
            ToolCall(call_id or f"call_{i}", clean_text(name), clean_text(arguments))
            for i, (call_id, name, arguments) in sorted(self._calls.items())
        )
        return LLMResponse(
            content=clean_text(content) if content or not calls else None,
            tool_calls=calls,
            usage=self._usage,
        )


def _wire_message(message: PromptMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.images:
        wire["content"] = [
            {"type": "text", "text": message.content or ""},
            *(_wire_image(image) for image in message.images),
        ]
    if message.role is Role.ASSISTANT and message.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.role is Role.TOOL:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _wire_image(image: ImagePart) -> dict[str, Any]:
    encoded = base64.b64encode(image.data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{image.mime_type};base64,{encoded}"}}


def _wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }
