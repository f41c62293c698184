"""The Telegram adapter: PTB's ``Application`` driven by hand beside the other adapters.

Lifecycle (not ``run_polling``, which would own the event loop and the signals):

    start: initialize (getMe) → start → deleteWebhook → polling; returns once the first
           getUpdates is issued (or, if another process polls, once this one stands by). The
           command menu is registered in the background.
    stop:  stop polling (confirming what was stored) → let answers in progress go out (bounded)
           → stop → shutdown.

Several processes on one database (PostgreSQL) elect one poller: the one holding the role
``telegram poller`` polls, the others wait for it and take over when it dies or stalls. With a
webhook URL set, every process instead serves the webhook (webhook.py), for a load balancer in
front of them; there is nothing to elect.

Updates are fetched by ``UpdatePoller`` instead of PTB's ``Updater`` so that an update is
confirmed to Telegram only after ``runtime.accept`` has stored it (see poller.py). For the same
reason PTB's ``concurrent_updates`` is not used: storing runs in arrival order, one update at a
time (a quick SQLite insert), and only then is the answer spawned as its own task. Answers run
concurrently across people, while the runtime's per-person lock keeps one person's turns in the
order they were accepted; a command can therefore never overtake the message before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any

from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from agentcore.commands import USER_COMMANDS
from agentcore.outbox import Delivery
from agentcore.runtime import AgentRuntime, Ticket
from agentcore.schedule.model import DeliveryScope
from agentcore.storage.protocols import Coordination, Role, StorageError
from agentcore.storage.single import LocalRoles
from agentcore.types import ChatKind, InboundFile, InboundMessage, Reply
from bots.answers import Answers
from bots.streaming import GrowingReply, Pacing
from bots.telegram.poller import STALE_CONFLICTS, TOKEN_HELP, RoleLost, UpdatePoller
from bots.telegram.render import telegram_parts
from bots.telegram.send import Destination, ReplySender, StreamEditor
from bots.telegram.translate import (
    BotIdentity,
    FileRef,
    Route,
    Unreadable,
    file_refs,
    translate,
)
from bots.telegram.webhook import WebhookServer, webhook_secret

log = logging.getLogger("bots.telegram")

TEXT_ONLY = (
    "I can't read that kind of message. I read text, photos, voice notes, audio, PDFs, Word "
    "documents and text files."
)
_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")  # what Telegram accepts in a menu

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
POLLER = "telegram poller"  # the role of the one process that polls
RETRY_ROLE_SECONDS = 5.0  # after the database failed to say who polls
EDITS_PER_SECOND = 20.0  # streamed edits across all chats (Telegram allows ~30 messages/s)


class TelegramAdapter:
    name = "telegram"

    def __init__(
        self,
        application: TelegramApp,
        runtime: AgentRuntime,
        *,
        roles: Coordination | None = None,  # the storage, electing the poller; None: alone
        shared: bool = False,  # other bot processes use the database (and may poll) too
        webhook: tuple[str, tuple[str, int]] | None = None,  # URL, and where to serve it
        typing_interval: float = 4.0,  # Telegram shows "typing…" for ~5 s per action
        poll_timeout: float = 10.0,
        grace: float = 20.0,  # how long stop() waits for answers in progress
        max_file_bytes: int = 20 * 2**20,  # larger files are not downloaded
        edit_seconds: float = 1.0,  # a streamed answer is edited at most this often per chat
        retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
        backoff: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self._app = application
        self._runtime = runtime
        self._roles = roles or LocalRoles()
        self._shared = shared
        self._typing_interval = typing_interval
        self._grace = grace
        self._max_file_bytes = max_file_bytes
        self._pacing = Pacing(edit_seconds, EDITS_PER_SECOND)
        self._sender = ReplySender(application.bot, retry_delays=retry_delays)
        self._poll_timeout = poll_timeout
        self._backoff = backoff
        self._poller: UpdatePoller | None = None  # while this process polls
        self._webhook = (
            None
            if webhook is None
            else WebhookServer(
                application.bot,
                self._take,
                webhook[0],
                webhook[1],
                webhook_secret(application.bot.token),
            )
        )
        self._me: BotIdentity | None = None
        self._poll_task: asyncio.Task[int] | None = None
        self._receiving = asyncio.Event()  # polling, standing by, or serving the webhook
        self._stopping = asyncio.Event()  # set once by stop()
        self._answers = Answers(runtime, self.name)
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect; return once receiving (or the start failed fatally, in which case
        ``finished`` reports exit code 1)."""
        try:
            await self._app.initialize()  # getMe
            self._me = BotIdentity(self._app.bot.id, self._app.bot.username)
            await self._app.start()
            if self._webhook is None:
                await self._app.bot.delete_webhook()  # getUpdates is refused while one is set
            else:
                await self._webhook.start()
        except InvalidToken:
            return self._fail(TOKEN_HELP)
        except TelegramError as exc:
            return self._fail(f"cannot reach the Bot API ({exc})")
        except OSError as exc:
            return self._fail(f"cannot serve the Telegram webhook: {exc.strerror or exc}")
        log.info("connected as @%s", self._me.username)
        if self._webhook is None:
            self._poll_task = asyncio.create_task(self._poll_when_elected(), name="telegram-poll")
            self._poll_task.add_done_callback(self._poller_done)
            receiving = asyncio.ensure_future(self._receiving.wait())
            await asyncio.wait([receiving, self._poll_task], return_when=asyncio.FIRST_COMPLETED)
            receiving.cancel()
        self._answers.spawn(self._register_commands())
        # Telegram delivers left-over updates again too; the runtime recognises and skips them.
        await self._answers.answer_waiting(lambda ticket: self._answers.spawn(self._answer(ticket)))

    async def _poll_when_elected(self) -> int:
        """Poll while this process holds the poller role, standing by while another one does;
        the exit code once stopped (0) or failed (1)."""
        while not self._stopping.is_set():
            role = await self._elected()
            if role is None:
                break
            try:
                log.info("polling for updates (this process is the poller)")
                self._poller = UpdatePoller(
                    self._app.bot,
                    self._take,
                    timeout=self._poll_timeout,
                    backoff=self._backoff,
                    role=role,
                    stale_conflicts=STALE_CONFLICTS if self._shared else 0,
                )
                return await self._polling(self._poller)
            except RoleLost:
                log.warning(
                    "another process polls now (this one stalled, or lost its database "
                    "connection); standing by"
                )
            finally:
                self._poller = None
                await role.release()
        return 0

    async def _polling(self, poller: UpdatePoller) -> int:
        ready = asyncio.ensure_future(poller.ready.wait())
        ready.add_done_callback(lambda _: self._receiving.set())
        try:
            return await poller.run()
        finally:
            ready.cancel()

    async def _elected(self) -> Role | None:
        """The poller role, once this process holds it; None if stopped first."""
        role = await self._take_role(wait=False)
        if role is not None:
            return role
        log.info("another process polls Telegram; this one stands by to take over")
        self._receiving.set()
        while not self._stopping.is_set():
            taking = asyncio.ensure_future(self._take_role(wait=True))
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait([taking, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not taking.done():  # stopped while standing by
                taking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    if (late := await taking) is not None:
                        await late.release()
                return None
            if (role := taking.result()) is not None:
                return role
            with contextlib.suppress(TimeoutError):  # the database failed; try again soon
                await asyncio.wait_for(self._stopping.wait(), RETRY_ROLE_SECONDS)
        return None

    async def _take_role(self, *, wait: bool) -> Role | None:
        try:
            return await self._roles.take_role(POLLER, wait=wait)
        except StorageError as exc:
            log.warning("cannot tell which process polls Telegram (%s); trying again", exc)
            return None

    def _fail(self, message: str) -> None:
        log.error(message)
        if not self._exit.done():
            self._exit.set_result(1)

    def _poller_done(self, task: asyncio.Task[int]) -> None:
        if self._exit.done():
            return
        if task.cancelled():
            self._exit.set_result(1)
        elif task.exception() is not None:
            log.error("polling stopped by an unexpected error", exc_info=task.exception())
            self._exit.set_result(1)
        else:
            self._exit.set_result(task.result())

    async def finished(self) -> int:
        return await asyncio.shield(self._exit)

    async def stop(self) -> None:
        """Stop receiving (stored updates are confirmed), let answers in progress go out for up
        to ``grace`` seconds, then disconnect. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._poller is not None:
            self._poller.stop()
        if self._poll_task is not None:
            await asyncio.wait([self._poll_task])
        if self._webhook is not None:
            await self._webhook.stop()
        await self._answers.drain(self._grace)
        if self._app.running:
            await self._app.stop()
        await self._app.shutdown()

    async def _register_commands(self) -> None:
        """The command menu, from the core's list, so new commands appear by themselves."""
        commands = [
            BotCommand(c.name, c.description[:256])
            for c in USER_COMMANDS
            if _COMMAND_NAME_RE.match(c.name)
        ]
        try:
            await self._app.bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("could not register the command menu: %s", exc)

    # ----------------------------------------------------------------- updates

    async def _take(self, updates: Sequence[Update]) -> None:
        """Store a batch in arrival order, starting each answer as soon as its message is
        stored (so answers go out staggered, first come first served). Runs before Telegram
        is told the batch was received."""
        for update in updates:
            try:
                answer = await self._store(update)
            except Exception:
                # A bug, not bad input: skip this update rather than fetch it again forever.
                log.exception("could not handle update %d; skipping it", update.update_id)
                continue
            if answer is not None:
                self._answers.spawn(answer)

    async def _store(self, update: Update) -> Coroutine[Any, Any, None] | None:
        """Translate and store one update; return the work that answers it, if any."""
        assert self._me is not None
        item = translate(update, self._me)
        if item is None:
            return None
        if isinstance(item, Unreadable):
            to = Destination(item.route, item.chat, int(item.key.user_id))
            return self._sender.notice(TEXT_ONLY, to)
        refs = file_refs(update.message) if update.message is not None else []
        if refs:
            item = replace(item, files=tuple([await self._download(ref) for ref in refs]))
        return self._answer(await self._runtime.accept(item))

    async def _download(self, ref: FileRef) -> InboundFile:
        """The file's bytes (none if it is over the limit or could not be fetched: the core
        tells the person which)."""
        limit = self._max_file_bytes
        if ref.size is not None and ref.size > limit:
            return InboundFile(ref.filename, ref.mime_type, b"", ref.size, ref.voice)
        try:
            found = await self._app.bot.get_file(ref.file_id)
            data = bytes(await found.download_as_bytearray())
        except TelegramError as exc:  # includes "file is too big" for files over 20 MB
            log.warning("could not download a %s: %s", ref.mime_type, exc)
            return InboundFile(ref.filename, ref.mime_type, b"", ref.size or 0, ref.voice)
        if len(data) > limit:
            return InboundFile(ref.filename, ref.mime_type, b"", len(data), ref.voice)
        return InboundFile(ref.filename, ref.mime_type, data, voice=ref.voice)

    async def _answer(self, ticket: Ticket) -> None:
        route = Route.from_json(ticket.message.route)
        to = _destination(ticket.message, route)
        stream = GrowingReply(
            StreamEditor(self._app.bot, to), telegram_parts, self._pacing, route.chat_id
        )
        sink = ChatSink(self._sender, to, stream)
        await self._answers.answer(
            ticket, lambda: self._keep_typing(route), stream, self._deliver, sink
        )

    async def _deliver(self, message: InboundMessage, reply: Reply) -> None:
        await self._sender.send(reply, _destination(message, Route.from_json(message.route)))

    async def _keep_typing(self, route: Route) -> None:
        while True:
            await self._sender.typing(route)
            await asyncio.sleep(self._typing_interval)

    # ----------------------------------------------------------------- speaking first

    @property
    def scope(self) -> DeliveryScope:
        return DeliveryScope(self.name)

    async def deliver(self, delivery: Delivery) -> bool:
        """A reminder: to the group it was set in (quoting the request), else to the person's
        private chat, whose id on Telegram is the person's own."""
        user_id = int(delivery.key.user_id)
        route = Route(user_id, 0)
        if delivery.chat is ChatKind.GROUP:
            try:
                route = Route.from_json(delivery.route)
            except ValueError:
                log.warning("a group reminder for %s has no usable route", delivery.key)
                return False
        return await self._sender.send(delivery.reply, Destination(route, delivery.chat, user_id))


class ChatSink:
    """A turn's notices, sent to the chat its answer goes to, and its answer as it grows."""

    def __init__(self, sender: ReplySender, to: Destination, stream: GrowingReply) -> None:
        self._sender = sender
        self._to = to
        self._stream = stream

    async def notice(self, text: str) -> None:
        await self._sender.notice(text, self._to)

    async def grow(self, text: str) -> None:
        await self._stream.grow(text)


def _destination(message: InboundMessage, route: Route) -> Destination:
    return Destination(route, message.chat, int(message.key.user_id))
