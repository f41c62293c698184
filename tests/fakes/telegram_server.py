"""A fake Telegram Bot API server on 127.0.0.1 (aiohttp), for the real python-telegram-bot client.

Point PTB at it with ``ApplicationBuilder().base_url(root + "/bot")`` (or ``TELEGRAM_BASE_URL``).
It serves getMe, getUpdates (long polling, confirmation by ``offset``; a newer getUpdates ends
the one waiting with 409, as Telegram does when two processes poll), sendMessage (HTML is
parsed as strictly as Telegram does: unknown tags, unbalanced tags or stray ``<``/``&`` give 400
"can't parse entities"; more than 4096 UTF-16 units of visible text gives 400), sendChatAction,
editMessageText (a message reads as last edited), deleteMessage, sendDocument,
setMyCommands/getMyCommands, getFile with the file download route (``/file/bot<token>/<path>``,
refusing files over 20 MB as Telegram does), and setWebhook/deleteWebhook: with a webhook set,
updates are POSTed to it instead (with the secret token), one at a time per chat and each again
after anything but a 2xx, and getUpdates is refused. Tests store files with ``upload`` and send
them in ``photo``/``voice``/``document`` payloads; push updates (``private``, ``group``,
``push``), inject errors (``inject``), and read what the bot did (``sent``, ``actions``,
``calls``, ``polls``, ``posts``), waiting on conditions with ``wait_until``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

MAX_TEXT = 4096
MAX_DOWNLOAD = 20 * 2**20  # getFile refuses larger files
BOT_ID = 777000111
_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+=\"[^\"]*\")*)\s*>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")
_INT_PARAMS = {"chat_id", "offset", "limit", "timeout", "message_id", "message_thread_id"}
_JSON_PARAMS = {"reply_parameters", "commands", "allowed_updates", "link_preview_options"}


# Content without text, as Telegram sends it (pass as ``sticker=STICKER`` etc.).
STICKER = {"file_id": "s1", "file_unique_id": "su1", "type": "regular", "width": 512,
           "height": 512, "is_animated": False, "is_video": False}  # fmt: skip
PHOTO = [{"file_id": "p1", "file_unique_id": "pu1", "width": 90, "height": 90}]
VOICE = {"file_id": "v1", "file_unique_id": "vu1", "duration": 3}


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class Chat:
    id: int
    type: str = "group"  # "private", "group", "supergroup"
    title: str = "A group"
    is_forum: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass
class Sent:
    """A message the bot sent (or a document, or an edit). A sent message reads as its last
    edit made it, as a person would see it; each edit is also recorded on its own."""

    method: str
    chat_id: int
    message_id: int
    text: str  # as sent (HTML source when parse_mode is HTML)
    parse_mode: str | None
    plain: str  # the visible text after parsing, as a person would see it
    pre: list[str]  # the content of each <pre> block, in order
    reply_to: int | None
    thread_id: int | None
    at: float  # time.perf_counter() when it arrived
    document: tuple[str, bytes] | None = None


@dataclass
class Injected:
    method: str
    status: int
    description: str
    retry_after: int | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Post:
    """One webhook delivery attempt: the update, and the status it got (0: no answer)."""

    update_id: int
    status: int
    at: float


class FakeTelegram:
    def __init__(
        self,
        token: str = "123456:TEST-fake-token-for-tests",
        username: str = "memo_test_bot",
        first_name: str = "Memo",
        webhook_retry: float = 0.05,  # seconds before an update refused by the webhook is resent
    ) -> None:
        self.token = token
        self.webhook: tuple[str, str] | None = None  # its URL and secret token, once set
        self.posts: list[Post] = []
        self._webhook_retry = webhook_retry
        self._deliverer: asyncio.Task[None] | None = None
        self._polls_started = 0
        self.me = User(BOT_ID, first_name, username, is_bot=True)
        self.sent: list[Sent] = []
        self._sent_by_chat: dict[tuple[int, str], list[Sent]] = {}  # (chat, method) -> sent
        self.actions: list[tuple[int, str, float]] = []  # (chat_id, action, at)
        self.calls: list[Call] = []
        self.commands: list[dict[str, str]] = []
        self.webhook_deleted = 0
        self.updates: dict[int, dict[str, Any]] = {}  # every update pushed, by id
        self.observers: list[Callable[[Call], None]] = []  # called as each request arrives
        self.delivered_at: dict[int, float] = {}  # update id -> first time in a getUpdates reply
        self._pending: list[dict[str, Any]] = []  # updates not yet confirmed by an offset
        self._chats: dict[int, dict[str, Any]] = {}
        self._started: set[int] = set()  # users who opened a private chat with the bot
        self._injected: list[Injected] = []
        self._update_ids = itertools.count(1)
        self._files: dict[str, bytes] = {}  # file_id -> bytes (see upload)
        self.downloads: list[str] = []  # file ids fetched through the download route
        self._message_ids = itertools.count(1)
        self._changed = asyncio.Event()  # replaced after each change; waiters wake
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.root = ""

    # ------------------------------------------------------------------ server

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        self._closing.set()
        self._touch()
        if self._deliverer is not None:
            await self._deliverer
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params, time.perf_counter())
        self.calls.append(call)
        for observe in self.observers:
            observe(call)
        self._touch()  # a request arrived (a long poll may not answer for a while)
        failure = self._take_injected(method, params)
        if failure is not None:
            call.status = failure.status
            self._touch()
            return _error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, "_api_" + method, None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            call.status = exc.status
            return _error(exc.status, exc.description)
        finally:
            self._touch()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        file_id = request.match_info["path"].rpartition("/")[2]
        if file_id not in self._files:
            return _error(404, "Not Found")
        self.downloads.append(file_id)
        self._touch()
        return web.Response(body=self._files[file_id], content_type="application/octet-stream")

    def _take_injected(self, method: str, params: dict[str, Any]) -> Injected | None:
        for rule in self._injected:
            if rule.method == method and (rule.when is None or rule.when(params)):
                rule.times -= 1
                if rule.times <= 0:
                    self._injected.remove(rule)
                return rule
        return None

    def _touch(self) -> None:
        """Something changed: wake everyone waiting (long polls, ``wait_until``)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ API methods

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.me.to_dict() | {"can_join_groups": True, "can_read_all_group_messages": False}

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook_deleted += 1
        self.webhook = None
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = (str(params["url"]), str(params.get("secret_token", "")))
        if self._deliverer is None or self._deliverer.done():
            self._deliverer = asyncio.create_task(self._deliver_by_webhook())
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands = list(params.get("commands", []))
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        self._polls_started += 1
        mine = self._polls_started
        offset = params.get("offset")
        if offset:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout", 0))
        while not self._pending and not self._closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
            if self._polls_started != mine:
                raise _ApiError(409, "Conflict: terminated by other getUpdates request")
        batch = self._pending[: int(params.get("limit", 100))]
        now = time.perf_counter()
        for update in batch:
            self.delivered_at.setdefault(update["update_id"], now)
        return batch

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for_sending(params["chat_id"])
        text = str(params.get("text", ""))
        plain, pre = _visible(text, params.get("parse_mode"))
        reply = params.get("reply_parameters") or {}
        return self._record("sendMessage", chat, text, params, plain, pre, reply.get("message_id"))

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for_sending(params["chat_id"])
        text = str(params.get("text", ""))
        plain, pre = _visible(text, params.get("parse_mode"))
        original = next(
            (
                s
                for s in self._sent_by_chat.get((chat["id"], "sendMessage"), [])
                if s.message_id == params.get("message_id")
            ),
            None,
        )
        if original is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if original.plain == plain and original.parse_mode == params.get("parse_mode"):
            raise _ApiError(400, "Bad Request: message is not modified")
        # The message now reads as edited (what a person sees); the edit is recorded too.
        original.text, original.plain, original.pre = text, plain, pre
        original.parse_mode = params.get("parse_mode")
        return self._record("editMessageText", chat, text, params, plain, pre, None)

    async def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for_sending(params["chat_id"])
        sent = self._sent_by_chat.get((chat["id"], "sendMessage"), [])
        kept = [s for s in sent if s.message_id != params.get("message_id")]
        if len(kept) == len(sent):
            raise _ApiError(400, "Bad Request: message to delete not found")
        self._sent_by_chat[(chat["id"], "sendMessage")] = kept
        return True

    async def _api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        data = self._files.get(file_id)
        if data is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if len(data) > MAX_DOWNLOAD:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": f"files/{file_id}",
        }

    async def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat_for_sending(params["chat_id"])
        self.actions.append((params["chat_id"], params["action"], time.perf_counter()))
        return True

    async def _api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for_sending(params["chat_id"])
        document = params.get("document")
        if not isinstance(document, tuple):
            raise _ApiError(400, "Bad Request: there is no document in the request")
        caption = str(params.get("caption", ""))
        message = self._record("sendDocument", chat, caption, params, caption, [], None)
        self.sent[-1].document = document
        return message | {"document": {"file_id": "f1", "file_unique_id": "u1"}}

    def _chat_for_sending(self, chat_id: int) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat_id > 0 and chat_id not in self._started:  # a user who never wrote to the bot
            raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat

    def _record(
        self,
        method: str,
        chat: dict[str, Any],
        text: str,
        params: dict[str, Any],
        plain: str,
        pre: list[str],
        reply_to: int | None,
    ) -> dict[str, Any]:
        message_id = params.get("message_id") or next(self._message_ids)
        sent = Sent(
            method=method,
            chat_id=chat["id"],
            message_id=message_id,
            text=text,
            parse_mode=params.get("parse_mode"),
            plain=plain,
            pre=pre,
            reply_to=reply_to,
            thread_id=params.get("message_thread_id"),
            at=time.perf_counter(),
        )
        self.sent.append(sent)
        self._sent_by_chat.setdefault((sent.chat_id, method), []).append(sent)
        return {
            "message_id": message_id,
            "from": self.me.to_dict(),
            "chat": chat,
            "date": int(time.time()),
            "text": plain,
        }

    # ------------------------------------------------------------------ webhook

    async def _deliver_by_webhook(self) -> None:
        """While a webhook is set: POST each chat's oldest update, one at a time per chat,
        until it is answered with a 2xx (then it is gone), again after anything else."""
        sending: dict[int, asyncio.Task[None]] = {}  # chat -> the delivery of its oldest update
        async with aiohttp.ClientSession() as session:
            while self.webhook is not None and not self._closing.is_set():
                changed = self._changed
                for update in self._pending:
                    chat = _chat_of(update)
                    if chat not in sending:  # its later updates wait for this one
                        sending[chat] = asyncio.create_task(self._post(session, update))
                await changed.wait()
                sending = {chat: task for chat, task in sending.items() if not task.done()}
            for task in sending.values():
                task.cancel()

    async def _post(self, session: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        assert self.webhook is not None
        url, secret = self.webhook
        status = 0
        try:
            async with session.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            ) as response:
                status = response.status
        except aiohttp.ClientError:
            pass  # nobody answered: it is sent again
        self.posts.append(Post(update["update_id"], status, time.perf_counter()))
        if 200 <= status < 300:
            self.delivered_at.setdefault(update["update_id"], time.perf_counter())
            self._pending = [u for u in self._pending if u is not update]
        else:
            await asyncio.sleep(self._webhook_retry)  # Telegram waits before trying again
        self._touch()

    # ------------------------------------------------------------------ scripting

    def inject(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (matching ``when``) fail this way."""
        self._injected.append(Injected(method, status, description, retry_after, times, when))

    def push(self, kind: str = "message", **payload: Any) -> int:
        """Queue a raw update (``kind`` is its field: message, edited_message, ...)."""
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self.updates[update_id] = update
        self._pending.append(update)
        self._touch()
        return update_id

    def message(
        self,
        user: User,
        chat: Chat,
        text: str | None = None,
        *,
        kind: str = "message",
        reply_to: Sent | None = None,
        **options: Any,
    ) -> int:
        """Queue a message from ``user`` in ``chat`` (see ``message_payload``)."""
        self._chats[chat.id] = chat.to_dict()
        if chat.type == "private":
            self._started.add(user.id)
        replied = self._as_message(reply_to) if reply_to is not None else None
        payload = message_payload(
            next(self._message_ids), user, chat, text, reply_to=replied, **options
        )
        if kind == "edited_message":
            payload["edit_date"] = payload["date"] + 1
        return self.push(kind, **payload)

    def upload(self, data: bytes) -> str:
        """Keep ``data`` as a file the bot can fetch with getFile; its file_id."""
        file_id = f"file{len(self._files) + 1}"
        self._files[file_id] = data
        return file_id

    def photo(self, data: bytes, width: int = 800, height: int = 600) -> list[dict[str, Any]]:
        """A ``photo`` field: a thumbnail (not uploaded) and the full size."""
        thumb = {"file_id": "thumb", "file_unique_id": "t", "width": 90, "height": 67}
        full = {"file_id": self.upload(data), "file_unique_id": "f", "width": width,
                "height": height, "file_size": len(data)}  # fmt: skip
        return [thumb, full]

    def voice(self, data: bytes, duration: int = 3) -> dict[str, Any]:
        return {"file_id": self.upload(data), "file_unique_id": "v", "duration": duration,
                "mime_type": "audio/ogg", "file_size": len(data)}  # fmt: skip

    def document(
        self, data: bytes, name: str, mime: str, size: int | None = None
    ) -> dict[str, Any]:
        """A ``document`` field; ``size`` overrides the declared size (a file too large to
        upload for real)."""
        return {"file_id": self.upload(data), "file_unique_id": "d", "file_name": name,
                "mime_type": mime, "file_size": len(data) if size is None else size}  # fmt: skip

    def private(self, user: User, text: str | None = None, **options: Any) -> int:
        return self.message(user, Chat(user.id, "private", title=""), text, **options)

    def _as_message(self, sent: Sent) -> dict[str, Any]:
        return {
            "message_id": sent.message_id,
            "from": self.me.to_dict(),
            "chat": self._chats[sent.chat_id],
            "date": int(time.time()),
            "text": sent.plain,
        }

    # ------------------------------------------------------------------ reading

    def to_chat(self, chat_id: int, method: str = "sendMessage") -> list[Sent]:
        return list(self._sent_by_chat.get((chat_id, method), []))

    def texts(self, chat_id: int) -> list[str]:
        return [s.plain for s in self.to_chat(chat_id)]

    @property
    def polls(self) -> list[Call]:
        return [c for c in self.calls if c.method == "getUpdates"]

    @property
    def unconfirmed(self) -> list[int]:
        """Update ids Telegram would send again (no getUpdates with a higher offset yet)."""
        return [u["update_id"] for u in self._pending]

    async def wait_until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                await self._changed.wait()

    async def wait_for_messages(self, chat_id: int, count: int, within: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.to_chat(chat_id)) >= count, within)


def _chat_of(update: dict[str, Any]) -> int:
    payload = next(v for k, v in update.items() if k != "update_id")
    return int(payload["chat"]["id"])


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _params(request: web.Request) -> dict[str, Any]:
    """PTB sends form fields (JSON-encoded where not plain), or multipart with files."""
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = (value.filename, value.file.read())
        elif key in _INT_PARAMS:
            params[key] = int(value)
        elif key in _JSON_PARAMS:
            params[key] = json.loads(value)
        else:
            params[key] = value
    for key, value in list(params.items()):  # "attach://name" refers to another multipart field
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = params[value.removeprefix("attach://")]
    return params


def message_payload(
    message_id: int,
    user: User,
    chat: Chat,
    text: str | None = None,
    *,
    date: datetime | None = None,
    reply_to: dict[str, Any] | None = None,
    thread_id: int | None = None,
    **content: Any,
) -> dict[str, Any]:
    """A Message as Telegram sends it: text, or content such as ``sticker=STICKER`` or
    ``photo=PHOTO, caption=...``; entities are computed the way Telegram does."""
    payload: dict[str, Any] = {
        "message_id": message_id,
        "from": user.to_dict(),
        "chat": chat.to_dict(),
        "date": int((date or datetime.now(UTC)).timestamp()),
    }
    if text is not None:
        payload |= {"text": text, "entities": entities(text)}
    for key, value in content.items():
        payload[key] = value
        if key == "caption":
            payload["caption_entities"] = entities(value)
    if reply_to is not None:
        payload["reply_to_message"] = reply_to
    if thread_id is not None:
        payload |= {"message_thread_id": thread_id, "is_topic_message": True}
    return payload


def entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities, with Telegram's UTF-16 offsets."""
    found = []
    command = _COMMAND_RE.match(text)
    if command:
        found.append(("bot_command", command.start(), command.end()))
    found += [("mention", m.start(), m.end()) for m in _MENTION_RE.finditer(text)]
    return [
        {"type": kind, "offset": utf16(text[:start]), "length": utf16(text[start:end])}
        for kind, start, end in found
    ]


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _visible(text: str, parse_mode: str | None) -> tuple[str, list[str]]:
    pre: list[str]
    if parse_mode is None:
        plain, pre = text, []
    elif parse_mode == "HTML":
        try:
            plain, pre = parse_html(text)
        except ParseError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
    else:
        raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
    if not plain.strip():
        raise _ApiError(400, "Bad Request: message text is empty")
    if utf16(plain) > MAX_TEXT:
        raise _ApiError(400, "Bad Request: message is too long")
    return plain, pre


def parse_html(source: str) -> tuple[str, list[str]]:
    """Telegram's HTML parse mode: the visible text and the text of each <pre> block."""
    stack: list[str] = []
    out: list[str] = []
    pre: list[str] = []
    pre_start = 0
    position = 0
    while position < len(source):
        char = source[position]
        if char == "<":
            tag = _TAG_RE.match(source, position)
            if tag is None:
                raise ParseError(f"unsupported start tag at byte offset {position}")
            closing, name = tag.group(1) == "/", tag.group(2).lower()
            if name not in _ALLOWED_TAGS:
                raise ParseError(f'unsupported start tag "{name}" at byte offset {position}')
            if closing:
                if not stack or stack.pop() != name:
                    raise ParseError(f'unmatched end tag "{name}" at byte offset {position}')
                if name == "pre":
                    pre.append("".join(out)[pre_start:])
            else:
                stack.append(name)
                if name == "pre":
                    pre_start = len("".join(out))
            position = tag.end()
        elif char == "&":
            entity = _ENTITY_RE.match(source, position)
            if entity is None:
                raise ParseError(f"unsupported HTML entity at byte offset {position}")
            out.append(html.unescape(entity.group(0)))
            position = entity.end()
        elif char == ">":
            raise ParseError(f"unescaped '>' at byte offset {position}")
        else:
            out.append(char)
            position += 1
    if stack:
        raise ParseError(f'can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out), pre
