"""A fake OpenAI-compatible chat-completions server on 127.0.0.1.

Each request is answered by a responder function (or a script of actions), so tests drive the
real ``openai`` SDK through tool calls, errors, retries, hangs and garbage.

It also measures prompt caching as a provider would see it: each request's prompt is laid out as
a chat template would (tool definitions, then every message in order), and the part that repeats
the start of the previous request for the same person (``prompt_cache_key``, else ``user``) is
reported as ``usage.prompt_tokens_details.cached_tokens``, as OpenAI does. Counts are exact, at
about four characters a token, without OpenAI's 1,024-token minimum and 128-token steps, so they
measure the bot's prompt layout and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Completion:
    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    prompt_tokens: int | None = None  # None: measured from the request
    completion_tokens: int = 10
    cached_tokens: int | None = None  # None: measured against the person's previous request


@dataclass
class Error:
    status: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    seconds: float


@dataclass
class Raw:
    body: str
    content_type: str = "application/json"
    status: int = 200


Action = Completion | Error | Hang | Raw
Responder = Callable[[dict[str, Any]], Action | Awaitable[Action]]
_ids = itertools.count(1)


CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class CacheMeasure:
    """One request's prompt as the fake measured it."""

    key: str  # whose requests it is compared with: prompt_cache_key, user, or "" for none
    prompt_tokens: int
    cached_tokens: int  # the start repeating the previous request with the same key


def prompt_text(body: dict[str, Any]) -> str:
    """The request laid out as a chat template lays it out: tools first, then the messages."""
    parts = [json.dumps(body.get("tools") or [], sort_keys=True)]
    for m in body.get("messages") or []:
        calls = json.dumps(m.get("tool_calls") or [], sort_keys=True)
        parts.append(f"<|{m.get('role')}|>{m.get('content') or ''}{calls}{m.get('tool_call_id')}")
    return "".join(parts)


def common_prefix(a: str, b: str) -> int:
    """How many characters at the start of ``a`` and ``b`` are the same."""
    size = min(len(a), len(b))
    low, high = 0, size  # binary search on slices: fast for prompts of megabytes
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class PromptCache:
    """The previous prompt of each person; measures how much of the next one repeats it."""

    def __init__(self) -> None:
        self._previous: dict[str, str] = {}
        self.measured: list[CacheMeasure] = []

    def measure(self, body: dict[str, Any]) -> CacheMeasure:
        key = str(body.get("prompt_cache_key") or body.get("user") or "")
        text = prompt_text(body)
        repeated = common_prefix(self._previous.get(key, ""), text)
        self._previous[key] = text
        found = CacheMeasure(
            key, math.ceil(len(text) / CHARS_PER_TOKEN), repeated // CHARS_PER_TOKEN
        )
        self.measured.append(found)
        return found


def completion_json(action: Completion, model: str, measured: CacheMeasure) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for name, args in action.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": action.content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": usage_json(action, measured),
    }


def usage_json(action: Completion, measured: CacheMeasure) -> dict[str, Any]:
    """What the responder set, else what was measured."""
    prompt = measured.prompt_tokens if action.prompt_tokens is None else action.prompt_tokens
    cached = measured.cached_tokens if action.cached_tokens is None else action.cached_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": action.completion_tokens,
        "total_tokens": prompt + action.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt)},
    }


class FakeOpenAI:
    def __init__(self, responder: Responder | Iterable[Action]) -> None:
        if callable(responder):
            self._responder: Responder = responder
        else:
            script = list(responder)
            self._responder = lambda _request: script.pop(0)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.cache = PromptCache()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # releases hanging handlers at shutdown
        self.base_url = ""

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        self._closing.set()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        measured = self.cache.measure(body)
        action = self._responder(body)
        if asyncio.iscoroutine(action) or isinstance(action, Awaitable):
            action = await action
        return await self._render(action, body.get("model", "fake"), measured)

    async def _render(
        self, action: Action, model: str, measured: CacheMeasure
    ) -> web.StreamResponse:
        if isinstance(action, Completion):
            return web.json_response(completion_json(action, model, measured))
        if isinstance(action, Error):
            payload = {"error": {"message": action.message, "type": "fake", "code": None}}
            return web.json_response(payload, status=action.status, headers=action.headers)
        if isinstance(action, Hang):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), action.seconds)
            return web.json_response({"error": {"message": "too late"}}, status=504)
        return web.Response(
            text=action.body, status=action.status, content_type=action.content_type
        )


def last_user(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            return str(message.get("content") or "")
    return ""


def system(body: dict[str, Any]) -> str:
    """Everything the request tells the model besides the conversation: its system messages."""
    return "\n\n".join(
        str(m.get("content") or "") for m in body["messages"] if m["role"] == "system"
    )
