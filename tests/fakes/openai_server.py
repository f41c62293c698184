"""A fake OpenAI-compatible chat-completions server on 127.0.0.1.

Each request is answered by a responder function (or a script of actions), so tests drive the
real ``openai`` SDK through tool calls, errors, retries, hangs and garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Completion:
    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    prompt_tokens: int = 100
    completion_tokens: int = 10


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


def completion_json(action: Completion, model: str) -> dict[str, Any]:
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
        "usage": {
            "prompt_tokens": action.prompt_tokens,
            "completion_tokens": action.completion_tokens,
            "total_tokens": action.prompt_tokens + action.completion_tokens,
        },
    }


class FakeOpenAI:
    def __init__(
        self, responder: Responder | Iterable[Action], *, cancel_on_disconnect: bool = False
    ) -> None:
        """``cancel_on_disconnect``: a request whose client goes away (killed, or it gave the
        call up) is cancelled in the responder, as a provider stops generating."""
        self._cancel_on_disconnect = cancel_on_disconnect
        if callable(responder):
            self._responder: Responder = responder
        else:
            script = list(responder)
            self._responder = lambda _request: script.pop(0)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # releases hanging handlers at shutdown
        self.base_url = ""

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=self._cancel_on_disconnect
        )
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
        action = self._responder(body)
        if asyncio.iscoroutine(action) or isinstance(action, Awaitable):
            action = await action
        return await self._render(action, body.get("model", "fake"))

    async def _render(self, action: Action, model: str) -> web.StreamResponse:
        if isinstance(action, Completion):
            return web.json_response(completion_json(action, model))
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
    return str(body["messages"][0].get("content") or "")
