"""``LLMClient`` over ``openai.AsyncOpenAI``: any OpenAI-compatible chat-completions endpoint
(OpenAI, Azure, OpenRouter, Ollama, vLLM, llama.cpp).

The SDK's own timeout and retries (with ``retry-after``) do the work; one outer deadline makes
sure the whole call, retries included, gives up within ``deadline`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
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
    LLMToolsRejected,
    LLMUnavailable,
    TextSink,
    ToolSpec,
    Usage,
)
from agentcore.llm.check import EndpointReport
from agentcore.llm.visible import VisibleText
from agentcore.messages import ImagePart, PromptMessage, Role, ToolCall
from agentcore.types import clean_text

log = logging.getLogger(__name__)

# Local servers (Ollama, llama.cpp) ignore the key but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
# How servers say they take no tool definitions: Ollama ("... does not support tools"), vLLM
# ('"auto" tool choice requires --enable-auto-tool-choice ...'), llama.cpp ("tools param
# requires --jinja flag", "Unsupported param: tool_choice") and OpenAI-style errors.
_TOOLS_REFUSED = re.compile(
    r"does not support (?:tools|tool use|function)|tool.?choice|--jinja|"
    r"unsupported param(?:eter)?:? ?'?tools?\b|tools? (?:is|are) not supported",
    re.IGNORECASE,
)
# The endpoint check's one-token request: whether the server takes tool definitions at all.
_CHECK_TOOL = {
    "type": "function",
    "function": {
        "name": "noop",
        "description": "Does nothing.",
        "parameters": {"type": "object", "properties": {}},
    },
}


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
        max_tokens: int = 0,
        send_cache_key: bool = False,
    ) -> None:
        self._model = model
        self._deadline = deadline
        self._temperature = temperature
        self._max_tokens = max_tokens  # 0: not sent (OpenAI's reasoning models refuse it)
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
            if "tools" in kwargs and _refuses_tools(exc):
                raise LLMToolsRejected(
                    f"the model endpoint refused tool definitions: {exc}"
                ) from exc
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

    async def check_endpoint(self) -> EndpointReport:
        """Is the endpoint reachable, the key accepted, the model served, and are tool
        definitions accepted? Run once in the background after start; never raises."""
        report = EndpointReport(str(self._client.base_url).rstrip("/"), self._model)
        try:
            async with asyncio.timeout(self._deadline):
                report = await self._list_models(report)
                if report.problem is None:
                    report = await self._try_tools(report)
        except TimeoutError:
            report = report.with_problem(
                f"the model endpoint {report.endpoint} did not answer within "
                f"{self._deadline:.0f}s: is the server running and reachable?"
            )
        return report

    async def _list_models(self, report: EndpointReport) -> EndpointReport:
        try:
            models = tuple([m.id async for m in self._client.models.list()])
        except openai.NotFoundError:
            return report  # some servers have no model list; the completion below will tell
        except openai.OpenAIError as exc:
            return _diagnose(report, exc)
        except ValueError:  # an HTML page or other non-JSON: rarely an OpenAI API
            return report.with_problem(_not_an_api(report.endpoint))
        if models and self._model not in models:
            listed = ", ".join(models[:20]) + (", ..." if len(models) > 20 else "")
            return report.with_problem(
                f"model {self._model!r} is not served by {report.endpoint}; set AGENTCORE_MODEL "
                f"to one of: {listed}"
            )
        return report

    async def _try_tools(self, report: EndpointReport) -> EndpointReport:
        try:
            await self._client.chat.completions.create(**self._check_request())
        except openai.OpenAIError as exc:
            if _refuses_tools(exc):
                return report.with_tools_rejected(str(exc))
            return _diagnose(report, exc)
        except ValueError:
            return report.with_problem(_not_an_api(report.endpoint))
        return report

    async def close(self) -> None:
        await self._client.close()

    def _check_request(self) -> dict[str, Any]:
        """One token, with a trivial tool: enough for a server to refuse tools if it does."""
        return {
            "model": self._model,
            "messages": [{"role": "user", "content": "Say OK."}],
            "tools": [_CHECK_TOOL],
            "tool_choice": "auto",
            "max_tokens": 1,
        }

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
        if self._max_tokens:
            kwargs["max_tokens"] = self._max_tokens
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


def _refuses_tools(exc: openai.OpenAIError) -> bool:
    if not isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return False
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    param = body.get("param") or (error.get("param") if isinstance(error, dict) else None)
    return param in ("tools", "tool_choice") or bool(_TOOLS_REFUSED.search(exc.message))


def _diagnose(report: EndpointReport, exc: openai.OpenAIError) -> EndpointReport:
    """One line naming the fix for what the endpoint check ran into."""
    where = report.endpoint
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return report.with_problem(
            f"{where} rejected the API key ({exc.message}): set OPENAI_API_KEY to a valid key"
        )
    if isinstance(exc, openai.NotFoundError):
        if not where.endswith("/v1"):
            return report.with_problem(_not_an_api(where))
        return report.with_problem(
            f"{where} does not know model {report.model!r} ({exc.message}): set AGENTCORE_MODEL"
        )
    if isinstance(exc, openai.APIConnectionError):
        return report.with_problem(
            f"cannot reach the model endpoint {where} ({exc.__cause__ or exc}): start the "
            "server, or fix OPENAI_BASE_URL"
        )
    if isinstance(exc, openai.APIStatusError):
        return report.with_problem(
            f"{where} answered the check with an error {exc.status_code}: {exc.message}"
        )
    return report.with_problem(f"{where} gave an unusable answer to the check: {exc}")


def _not_an_api(where: str) -> str:
    return (
        f"{where} does not answer like an OpenAI-compatible API: OPENAI_BASE_URL usually ends "
        f"in /v1 (e.g. {where.rstrip('/')}/v1)"
    )


def _arguments_text(arguments: Any) -> str:
    """A call's arguments as JSON text; some servers send the object itself."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return clean_text(arguments)
    return clean_text(json.dumps(arguments, ensure_ascii=False))


def _parse(completion: Any) -> LLMResponse:
    """Pull content, tool calls and usage out of a completion, whatever shape it arrived in."""
    try:
        message = completion.choices[0].message
        calls = tuple(
            ToolCall(
                call.id or f"call_{i}",
                clean_text(call.function.name or ""),
                _arguments_text(call.function.arguments),
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
