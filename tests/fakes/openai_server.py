"""A fake OpenAI-compatible chat-completions server on 127.0.0.1.

Each request is answered by a responder function (or a script of actions), so tests drive the
real ``openai`` SDK through tool calls, errors, retries, hangs and garbage. Messages may carry
image parts (``images_in`` reads them back). ``/v1/audio/transcriptions`` answers with
``transcribe(audio bytes, model)`` (text, or an ``Error``); without one it is a 404, like a
server that has no transcription.
``/v1/embeddings`` answers with deterministic vectors (``meaning_vector``: words hashed into
buckets, with a few synonyms sharing one, so "puppy" is near "dog"); ``embedding_faults`` scripts
what goes wrong with the next requests ("error": a 500, "hang", "nan", "dims": a vector of
another dimension, "count": one vector too few, "garbage": not JSON).

It also measures prompt caching as a provider would see it: each request's prompt is laid out as
a chat template would (tool definitions, then every message in order), and the part that repeats
the start of the previous request for the same person (``prompt_cache_key``, else ``user``) is
reported as ``usage.prompt_tokens_details.cached_tokens``, as OpenAI does. Counts are exact, at
about four characters a token, without OpenAI's 1,024-token minimum and 128-token steps, so they
measure the bot's prompt layout and nothing else.

Like a real server it lists its models (``GET /v1/models``), answers a one-token request (the
bot's endpoint check) itself, and may refuse tool definitions as servers without tool support
do (``refuses``). ``dialect(name, brain)`` makes a responder that writes what a scripted model
means to do (an ``Intent``) the way a family of models does on the wire: native tool calls,
Letta's ``request_heartbeat``, Hermes/Qwen ``<tool_call>`` text, bare JSON, Mistral's
``[TOOL_CALLS]``, Llama's ``<|python_tag|>``, ``<think>`` with ``reasoning_content``, or no tool
calls at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import time
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
    reasoning_content: str | None = None  # as DeepSeek, vLLM and llama.cpp send reasoning
    reasoning: str | None = None  # as OpenRouter sends it
    arguments_as_objects: bool = False  # some servers send the arguments object, not a string
    # Streamed (a request with "stream": true): tokens (words with their spaces) per second;
    # 0 sends them all at once.
    token_rate: float = 0.0


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
Transcribe = Callable[[bytes, str], "str | Error"]
_ids = itertools.count(1)


# What servers without tool support answer when a request carries tool definitions.
OLLAMA_NO_TOOLS = "registry.ollama.ai/library/gemma2:2b does not support tools"
VLLM_NO_AUTO_TOOLS = (
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)
LLAMA_CPP_NO_TOOL_CHOICE = "Unsupported param: tool_choice"


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
        content = m.get("content") or ""
        text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
        calls = json.dumps(m.get("tool_calls") or [], sort_keys=True)
        parts.append(f"<|{m.get('role')}|>{text}{calls}{m.get('tool_call_id')}")
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


UNMEASURED = CacheMeasure("", 0, 0)  # the endpoint check's one-token request is not measured


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
                "arguments": (
                    args
                    if isinstance(args, str) or action.arguments_as_objects
                    else json.dumps(args)
                ),
            },
        }
        for name, args in action.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": action.content}
    if action.reasoning_content is not None:
        message["reasoning_content"] = action.reasoning_content
    if action.reasoning is not None:
        message["reasoning"] = action.reasoning
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


EMBEDDING_DIMS = 64
# Words that mean the same to the fake embedding model (each group shares one bucket).
SYNONYMS = [
    {"dog", "dogs", "puppy", "puppies", "pup", "hound"},
    {"car", "cars", "automobile", "vehicle"},
    {"doctor", "physician", "clinic", "hospital"},
]


def meaning_vector(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """A unit vector of ``text``'s words, each word (or its synonym group) hashed to a bucket."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        group = next((min(g) for g in SYNONYMS if word in g), word)
        bucket = int.from_bytes(hashlib.sha256(group.encode()).digest()[:4], "big") % dims
        vector[bucket] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeOpenAI:
    def __init__(
        self,
        responder: Responder | Iterable[Action],
        *,
        transcribe: Transcribe | None = None,
        models: Iterable[str] = ("gpt-4o-mini",),
        refuses: str | None = None,
        key: str | None = None,
        models_hang: bool = False,
        cancel_on_disconnect: bool = False,
    ) -> None:
        """``key``: if set, requests with another API key get OpenAI's 401.
        ``models_hang``: ``GET /v1/models`` never answers (a server stuck loading a model).
        ``refuses``: "tools" (a 400 like Ollama's for a model without tool support),
        "auto tools" (vLLM's 400 without --enable-auto-tool-choice) or "tool_choice" (llama.cpp's
        400 on the parameter), for every request that carries it. ``cancel_on_disconnect``: a
        request whose client goes away (killed, or it gave the call up) is cancelled in the
        responder, as a provider stops generating."""
        self._cancel_on_disconnect = cancel_on_disconnect
        self._transcribe = transcribe
        self.transcriptions: list[dict[str, Any]] = []  # form fields (the file as bytes)
        if callable(responder):
            self._responder: Responder = responder
        else:
            script = list(responder)
            self._responder = lambda _request: script.pop(0)
        self.models = list(models)
        self.models_hang = models_hang
        self.models_asked = 0  # GET /v1/models requests (the bot's endpoint check starts so)
        self.refuses = refuses
        self.key = key
        self.refused = 0  # requests answered with a refusal
        self.checks: list[dict[str, Any]] = []  # one-token requests (the bot's endpoint check)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.cache = PromptCache()
        self.first_token_at: list[float] = []  # perf_counter when each stream's first token went
        self.embedding_faults: list[str] = []  # what goes wrong with the next /v1/embeddings
        self.embedded: list[dict[str, Any]] = []  # /v1/embeddings request bodies
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # releases hanging handlers at shutdown
        self.base_url = ""

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_post("/v1/embeddings", self._embeddings)
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

    def _unauthorised(self, request: web.Request) -> web.StreamResponse | None:
        if self.key is None or request.headers.get("Authorization") == f"Bearer {self.key}":
            return None
        error = {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
        return web.json_response({"error": error}, status=401)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.models_asked += 1
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        if self.models_hang:
            await self._closing.wait()
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        body = await request.json()
        refusal = self._refusal(body)
        if refusal is not None:
            self.refused += 1
            return await self._render(refusal, body.get("model", "fake"))
        if body.get("max_tokens") == 1:  # the endpoint check: one token, whatever the model
            self.checks.append(body)
            return await self._render(Completion(content="OK", completion_tokens=1), "fake")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        measured = self.cache.measure(body)
        action = self._responder(body)
        if asyncio.iscoroutine(action) or isinstance(action, Awaitable):
            action = await action
        if isinstance(action, Completion) and body.get("stream"):
            return await self._stream(request, action, body.get("model", "fake"), measured)
        if isinstance(action, Completion) and action.token_rate:
            # Not streamed: the whole answer once the model has written it all.
            self.first_token_at.append(time.perf_counter())
            tokens = len((action.content or "").split())
            await asyncio.sleep(max(0, tokens - 1) / action.token_rate)
        return await self._render(action, body.get("model", "fake"), measured)

    def _refusal(self, body: dict[str, Any]) -> Action | None:
        """Each server's own 400 body for tool definitions it does not take."""
        if self.refuses == "tools" and body.get("tools"):
            ollama = {"error": {"message": OLLAMA_NO_TOOLS, "type": "api_error", "param": None}}
            return Raw(json.dumps(ollama), status=400)
        auto = body.get("tool_choice", "auto") == "auto"
        if self.refuses == "auto tools" and body.get("tools") and auto:
            vllm = {
                "object": "error",
                "message": VLLM_NO_AUTO_TOOLS,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
            return Raw(json.dumps(vllm), status=400)
        if self.refuses == "tool_choice" and "tool_choice" in body:
            llama_cpp = {
                "error": {
                    "code": 400,
                    "message": LLAMA_CPP_NO_TOOL_CHOICE,
                    "type": "invalid_request_error",
                }
            }
            return Raw(json.dumps(llama_cpp), status=400)
        return None

    async def _stream(
        self, request: web.Request, action: Completion, model: str, measured: CacheMeasure
    ) -> web.StreamResponse:
        """The completion as server-sent events, as OpenAI streams it: a role chunk, content
        a token at a time (at ``token_rate``), tool calls, the finish reason, then usage."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        done = completion_json(action, model, measured)
        message = done["choices"][0]["message"]

        async def event(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": done["id"],
                "object": "chat.completion.chunk",
                "created": done["created"],
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await event({"role": "assistant", "content": ""})
        for token in re.findall(r"\s*\S+\s*", action.reasoning_content or ""):
            await event({"reasoning_content": token})  # as vLLM and DeepSeek stream it
        for token in re.findall(r"\s*\S+\s*", action.reasoning or ""):
            await event({"reasoning": token})  # as OpenRouter streams it
        for i, token in enumerate(re.findall(r"\s*\S+\s*", action.content or "")):
            if i == 0:
                self.first_token_at.append(time.perf_counter())
            elif action.token_rate:
                await asyncio.sleep(1 / action.token_rate)
            await event({"content": token})
        for index, call in enumerate(message.get("tool_calls", [])):
            await event({"tool_calls": [call | {"index": index}]})
        await event({}, done["choices"][0]["finish_reason"])
        usage_chunk = {
            "id": done["id"],
            "object": "chat.completion.chunk",
            "created": done["created"],
            "model": model,
            "choices": [],
            "usage": done["usage"],
        }
        await response.write(f"data: {json.dumps(usage_chunk)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields: dict[str, Any] = {}
        for key, value in form.items():
            fields[key] = value.file.read() if isinstance(value, web.FileField) else value
        self.transcriptions.append(fields)
        if self._transcribe is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        result = self._transcribe(fields.get("file", b""), str(fields.get("model", "")))
        if isinstance(result, Error):
            return await self._render(result, "")
        return web.json_response({"text": result})

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.embedded.append(body)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [meaning_vector(t) for t in texts]
        fault = self.embedding_faults.pop(0) if self.embedding_faults else ""
        if fault in ("error", "hang", "garbage"):
            faults: dict[str, Action] = {
                "error": Error(500, "embedding model crashed"),
                "hang": Hang(3600),
                "garbage": Raw("<html>bad gateway</html>", "text/html"),
            }
            return await self._render(faults[fault], "")
        if fault == "nan":
            vectors[0] = [math.nan] * EMBEDDING_DIMS
        elif fault == "dims":
            vectors[-1] = vectors[-1][: EMBEDDING_DIMS // 2]
        elif fault == "count":
            vectors.pop()
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return web.Response(
            text=json.dumps(
                {"object": "list", "data": data, "model": body["model"], "usage": usage}
            ),
            content_type="application/json",
        )

    async def _render(
        self, action: Action, model: str, measured: CacheMeasure = UNMEASURED
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
            return text_of(message)
    return ""


def since_last_answer(body: dict[str, Any]) -> list[str]:
    """The person's messages a turn answers: the user messages after the last answer."""
    said: list[str] = []
    for message in body["messages"]:
        if message["role"] == "assistant":
            said = []
        elif message["role"] == "user":
            said.append(str(message["content"]))
    return said


def text_of(message: dict[str, Any]) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return str(content)


def system(body: dict[str, Any]) -> str:
    """Everything the request tells the model besides the conversation: its system messages."""
    return "\n\n".join(text_of(m) for m in body["messages"] if m["role"] == "system")


def images_in(body: dict[str, Any]) -> list[str]:
    """The image URLs (data: URLs) of every message in a request, in order."""
    return [
        part["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


# --------------------------------------------------------------------- model dialects


@dataclass(frozen=True)
class Intent:
    """What a scripted model means to do, before its dialect writes it down."""

    say: str | None = None
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    thought: str = "The person is telling me something; let me think about what matters."


Brain = Callable[[dict[str, Any]], Intent]
DIALECTS = (
    "native",
    "letta",
    "hermes",
    "bare_json",
    "mistral",
    "llama",
    "think",
    "no_tools",
    "refuses_tools",
    "refuses_auto_tools",
    "refuses_tool_choice",
)


def server_refusal(name: str) -> str | None:
    """The ``FakeOpenAI(refuses=...)`` value a dialect's server needs."""
    return {
        "refuses_tools": "tools",
        "refuses_auto_tools": "auto tools",
        "refuses_tool_choice": "tool_choice",
    }.get(name)


def dialect(name: str, brain: Brain) -> Responder:
    """A responder that writes ``brain``'s intents the way dialect ``name`` does.

    Without tool definitions in the request (a summary, a consolidation) every model answers
    in text. The refusing servers' models have no tool support: given tools in the prompt (the
    bot's prompted mode) they write Hermes-style ``<tool_call>`` blocks, as they are asked to.
    """

    def respond(body: dict[str, Any]) -> Action:
        intent = brain(body)
        if body.get("tools"):
            return _WRITERS[name](intent)
        if "<tool_call>" in system(body):  # the bot's prompted tools
            return _hermes(intent)
        return _think(intent) if name == "think" else _text(intent)  # a summary, say

    return respond


def _native(intent: Intent) -> Completion:
    return Completion(content=intent.say, tool_calls=list(intent.calls))


def _letta(intent: Intent) -> Completion:
    """Letta-prompted models: every call carries request_heartbeat (and often inner_thoughts),
    and the reply itself is a send_message call."""
    calls: list[tuple[str, dict[str, Any] | str]] = [
        (tool, args | {"inner_thoughts": intent.thought, "request_heartbeat": True})
        for tool, args in intent.calls
    ]
    if intent.say is not None:
        calls.append(("send_message", {"message": intent.say, "request_heartbeat": False}))
    return Completion(content=None, tool_calls=calls)


def _hermes(intent: Intent) -> Completion:
    blocks = [
        "<tool_call>\n" + json.dumps({"name": tool, "arguments": args}) + "\n</tool_call>"
        for tool, args in intent.calls
    ]
    return Completion(content="\n".join([*blocks, *([intent.say] if intent.say else [])]))


def _bare_json(intent: Intent) -> Completion:
    """Llama 3.1's JSON tool calling: the whole reply is one object with "parameters"."""
    if not intent.calls:
        return _text(intent)
    tool, args = intent.calls[0]
    return Completion(content=json.dumps({"name": tool, "parameters": args}))


def _mistral(intent: Intent) -> Completion:
    if not intent.calls:
        return _text(intent)
    listed = [{"name": tool, "arguments": args} for tool, args in intent.calls]
    return Completion(content="[TOOL_CALLS] " + json.dumps(listed))


def _llama(intent: Intent) -> Completion:
    if not intent.calls:
        return _text(intent)
    tool, args = intent.calls[0]
    return Completion(
        content="<|python_tag|>" + json.dumps({"name": tool, "parameters": args}) + "<|eom_id|>"
    )


def _think(intent: Intent) -> Completion:
    """A reasoning model: the thought in <think> in the content, and in both fields servers
    send it in (``reasoning_content``; OpenRouter's ``reasoning``)."""
    content = f"<think>\n{intent.thought}\n</think>\n\n{intent.say or ''}".rstrip()
    return Completion(
        content=content,
        tool_calls=list(intent.calls),
        reasoning_content=intent.thought,
        reasoning=intent.thought,
    )


def _text(intent: Intent) -> Completion:
    """A model that never calls tools: it only ever answers."""
    return Completion(content=intent.say or "Okay, I'll keep that in mind.")


_WRITERS: dict[str, Callable[[Intent], Completion]] = {
    "native": _native,
    "letta": _letta,
    "hermes": _hermes,
    "bare_json": _bare_json,
    "mistral": _mistral,
    "llama": _llama,
    "think": _think,
    "no_tools": _text,
    "refuses_tools": _native,
    "refuses_auto_tools": _native,
    "refuses_tool_choice": _native,
}
