"""Sending the core's replies to Telegram.

A reply's Markdown is split into parts that fit one message, each part is rendered to HTML and
sent in order; if Telegram refuses it (400, e.g. "can't parse entities") that part is sent again
as plain text, the Markdown as written. Flood control (429) is the rate limiter's job (PTB's
``AIORateLimiter`` waits and retries); network errors and 5xx are retried here a few times with
backoff. A reply that still cannot be delivered is logged; it stays in the person's history.

Privacy in groups: a reply marked ``private`` (e.g. ``/memory``) is never posted in the group.
It goes to the person's private chat with the bot, and the group gets a one-line pointer. If
the person never opened a private chat with the bot, Telegram forbids the bot to write first:
then the group is told to ask in private instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from telegram import Bot, InputFile, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from agentcore.types import Attachment, ChatKind, Reply, ReplyKind
from bots.streaming import RateLimited
from bots.telegram.errors import retry_after_seconds
from bots.telegram.render import telegram_parts, to_html
from bots.telegram.translate import Route

log = logging.getLogger("bots.telegram")

T = TypeVar("T")

SENT_PRIVATELY = "I've sent you that in our private chat."
ASK_PRIVATELY = (
    "That's private, so I won't post it here. Open a private chat with me (@{username}) and "
    "send the command there."
)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the answer to a message goes."""

    route: Route
    chat: ChatKind
    user_id: int  # the person, for private replies from a group


class ChatQueue:
    """One reply at a time per chat, in the order sending began: a reply held up by flood
    control must not be overtaken by the same person's next reply. Idle chats take no memory."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:
                del self._users[chat_id], self._locks[chat_id]


class ReplySender:
    def __init__(
        self,
        bot: Bot,
        *,
        retry_delays: Sequence[float] = (1.0, 2.0, 4.0),
    ) -> None:
        self._bot = bot
        self._retry_delays = tuple(retry_delays)
        self._queue = ChatQueue()

    async def send(self, reply: Reply, to: Destination) -> bool:
        """Deliver ``reply``; False if Telegram refused it. Never raises for Telegram errors
        (they are logged)."""
        if reply.is_empty:
            return True
        async with self._queue.turn(to.route.chat_id):
            return await self._send(reply, to)

    async def _send(self, reply: Reply, to: Destination) -> bool:
        try:
            if reply.private and to.chat is ChatKind.GROUP:
                await self._send_privately(reply, to)
            else:
                await self._deliver(
                    reply, to.route.chat_id, to.route, in_group=to.chat is ChatKind.GROUP
                )
        except Forbidden as exc:
            log.info("chat %d does not accept messages (%s)", to.route.chat_id, exc)
        except TelegramError as exc:
            log.warning("could not send a reply to chat %d: %s", to.route.chat_id, exc)
        else:
            return True
        return False

    async def notice(self, text: str, to: Destination) -> None:
        await self.send(Reply(text, ReplyKind.NOTICE), to)

    async def typing(self, route: Route) -> None:
        """One "typing…" action (Telegram shows it for about five seconds)."""
        try:
            await self._bot.send_chat_action(
                route.chat_id, ChatAction.TYPING, message_thread_id=route.thread_id
            )
        except TelegramError as exc:
            log.debug("typing action failed in chat %d: %s", route.chat_id, exc)

    async def _send_privately(self, reply: Reply, to: Destination) -> None:
        try:
            await self._deliver(reply, to.user_id, None, in_group=False)
            pointer = SENT_PRIVATELY
        except (Forbidden, BadRequest) as exc:  # they never opened a private chat with us
            log.info("cannot write to user %d privately (%s)", to.user_id, exc)
            pointer = ASK_PRIVATELY.format(username=self._bot.username)
        notice = Reply(pointer, ReplyKind.NOTICE)
        await self._deliver(notice, to.route.chat_id, to.route, in_group=True)

    async def _deliver(
        self, reply: Reply, chat_id: int, route: Route | None, *, in_group: bool
    ) -> None:
        """Send the parts, then the files. In groups the first part quotes the question, so
        it is clear whom the bot answers."""
        thread = route.thread_id if route else None
        reply_to = None
        if route is not None and in_group:
            reply_to = ReplyParameters(route.message_id, allow_sending_without_reply=True)
        for part in telegram_parts(reply.text):
            await self._send_part(chat_id, part, thread, reply_to)
            reply_to = None
        for attachment in reply.attachments:
            await self._send_file(chat_id, attachment, thread)

    async def _send_part(
        self, chat_id: int, markdown: str, thread: int | None, reply_to: ReplyParameters | None
    ) -> None:
        try:
            await self._retrying(
                lambda: self._bot.send_message(
                    chat_id,
                    to_html(markdown),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=thread,
                    reply_parameters=reply_to,
                )
            )
        except BadRequest as exc:  # typically "can't parse entities"; plain text has none
            log.warning("Telegram refused a formatted part (%s); sending it as plain text", exc)
            await self._retrying(
                lambda: self._bot.send_message(
                    chat_id, markdown, message_thread_id=thread, reply_parameters=reply_to
                )
            )

    async def _send_file(self, chat_id: int, attachment: Attachment, thread: int | None) -> None:
        await self._retrying(
            lambda: self._bot.send_document(
                chat_id,
                InputFile(attachment.data, filename=attachment.filename),
                message_thread_id=thread,
            )
        )

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``, retrying network errors, 5xx and leftover flood waits with backoff.
        Refusals (400, 403) are final and raised at once."""
        for delay in self._retry_delays:
            try:
                return await call()
            except RetryAfter as exc:
                await asyncio.sleep(max(delay, retry_after_seconds(exc)))
            except NetworkError as exc:  # timeouts, 5xx, connection errors; and BadRequest
                if isinstance(exc, BadRequest):
                    raise
                log.debug("send failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
        return await call()


class StreamEditor:
    """One streamed answer's messages in a Telegram chat (``bots.streaming.MessageEditor``).
    Each part is HTML; one Telegram refuses to parse (Markdown cut off mid-stream) is shown
    as plain text for that edit. In groups the first message quotes the question."""

    def __init__(self, bot: Bot, to: Destination) -> None:
        self._bot = bot
        self._chat_id = to.route.chat_id
        self._thread = to.route.thread_id
        self._reply_to = (
            ReplyParameters(to.route.message_id, allow_sending_without_reply=True)
            if to.chat is ChatKind.GROUP
            else None
        )

    async def send(self, text: str) -> str | None:
        try:
            try:
                sent = await self._bot.send_message(
                    self._chat_id,
                    to_html(text),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=self._thread,
                    reply_parameters=self._reply_to,
                )
            except BadRequest:
                sent = await self._bot.send_message(
                    self._chat_id,
                    text,
                    message_thread_id=self._thread,
                    reply_parameters=self._reply_to,
                )
        except RetryAfter as exc:
            raise RateLimited(retry_after_seconds(exc)) from exc
        except TelegramError as exc:
            log.warning("could not send a streamed answer to chat %d: %s", self._chat_id, exc)
            return None
        self._reply_to = None
        return str(sent.message_id)

    async def edit(self, message_id: str, text: str) -> bool:
        try:
            try:
                await self._edit(message_id, to_html(text), ParseMode.HTML)
            except BadRequest as exc:
                if _not_modified(exc):
                    return True
                await self._edit(message_id, text, None)  # plain, for this edit
        except RetryAfter as exc:
            raise RateLimited(retry_after_seconds(exc)) from exc
        except BadRequest as exc:
            if _not_modified(exc):
                return True
            log.warning("could not edit a streamed answer in chat %d: %s", self._chat_id, exc)
            return False
        except TelegramError as exc:
            log.warning("could not edit a streamed answer in chat %d: %s", self._chat_id, exc)
            return False
        return True

    async def _edit(self, message_id: str, text: str, parse_mode: str | None) -> None:
        await self._bot.edit_message_text(
            text, chat_id=self._chat_id, message_id=int(message_id), parse_mode=parse_mode
        )

    async def delete(self, message_id: str) -> None:
        try:
            await self._bot.delete_message(self._chat_id, int(message_id))
        except TelegramError as exc:
            log.info("could not delete a streamed part in chat %d: %s", self._chat_id, exc)


def _not_modified(exc: BadRequest) -> bool:
    return "not modified" in exc.message.lower()
