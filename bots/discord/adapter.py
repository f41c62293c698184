"""The Discord adapter: discord.py in the shared asyncio loop, over the shared core.

Each message the bot should answer is handed to ``runtime.accept`` (stored) the moment it
arrives; answers are spawned strictly in arrival order (so one person's turns keep their order)
and run concurrently across people, with a typing indicator while a turn runs. Slash commands
are built from the core's command list and answered within Discord's 3-second deadline: a quick
answer is sent directly, a slow one is deferred (ephemerally) and followed up.

The client runs as ``async with client: await client.start(token)`` in a task; discord.py
reconnects and resumes by itself. Errors that reconnecting cannot fix (bad token, missing
intent) end the task with one log line that names the fix, and exit code 1.

Several processes on one database (PostgreSQL) split the bot's shards: each holds the role of
every shard it runs, so a second process for a shard refuses to start, and every IDENTIFY waits
its turn across processes (``Storage.pace``). Any process can send any reply (REST needs no
gateway connection), so whichever holds a person's lock answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

import discord
from discord import app_commands

from agentcore.outbox import Delivery
from agentcore.runtime import AgentRuntime, Ticket
from agentcore.schedule.model import DeliveryScope
from agentcore.storage.protocols import Coordination, Role
from agentcore.storage.single import LocalRoles
from agentcore.types import ChatKind, InboundMessage, Reply, ReplyKind
from bots.adapter import AdapterError
from bots.answers import SOMETHING_WENT_WRONG, Answers
from bots.discord.connect import fatal_reason, make_client, point_at, shard_roles
from bots.discord.send import (
    MESSAGE_LIMIT,
    SEND_ERRORS,
    ChannelSink,
    StreamEditor,
    download,
    respond_to_interaction,
    send_reply,
)
from bots.discord.slash import build_app_commands
from bots.discord.translate import DiscordRoute, command_to_inbound, content_notice, to_inbound
from bots.streaming import GrowingReply, Pacing
from bots.text import split_message
from config import Settings

log = logging.getLogger(__name__)

EDITS_PER_SECOND = 25.0  # streamed edits across all channels (Discord allows 50 requests/s)
COMMAND_BUDGET_SECONDS = 2.0  # answer a slash command directly if it is ready by then
TYPING_REFRESH_SECONDS = 8.0  # Discord shows "typing…" for 10 s after each request
UNKNOWN_COMMAND = "That command did not work. Type / to see the current commands."
PRIVATE_IN_PUBLIC = (
    "That answer shows what I keep about you, so I won't post it in this channel. "
    "Use the slash command instead (only you will see the answer), or ask me in a DM."
)


IDENTIFY = "discord identify"  # paced across processes: one per identify_interval seconds
SHARD_TAKEN = (
    "discord: {role} is already run by another process on this database: give each process "
    "its own AGENTCORE_DISCORD__SHARD_IDS (and all of them the same SHARD_COUNT)"
)


def build_discord_adapter(
    settings: Settings, runtime: AgentRuntime, roles: Coordination
) -> DiscordAdapter:
    """The adapter as configured (called by the composition root only if a token is set)."""
    config = settings.discord
    point_at(config.api_base, config.gateway_url)
    client = make_client(
        sharded=config.sharded,
        shard_count=config.shard_count,
        shard_ids=config.shard_ids,
        pace=lambda: roles.pace(IDENTIFY, config.identify_interval),
    )
    return DiscordAdapter(
        runtime,
        client,
        config.token.reveal(),
        roles=roles,
        shards=shard_roles(
            sharded=config.sharded, shard_count=config.shard_count, shard_ids=config.shard_ids
        ),
        sync_guild=config.sync_guild or None,
        stop_grace=settings.runtime.shutdown_grace,
        max_file_bytes=settings.agent.media.max_file_bytes,
        edit_seconds=settings.streaming.edit_seconds,
    )


class DiscordAdapter:
    name = "discord"

    def __init__(
        self,
        runtime: AgentRuntime,
        client: discord.Client,
        token: str,
        *,
        roles: Coordination | None = None,  # the storage, owning shards; None: alone
        shards: list[str] | None = None,  # the roles of the shards this client runs
        sync_guild: int | None = None,
        command_budget: float = COMMAND_BUDGET_SECONDS,
        stop_grace: float = 20.0,
        max_file_bytes: int = 20 * 2**20,
        edit_seconds: float = 1.0,
    ) -> None:
        self._runtime = runtime
        self._max_file_bytes = max_file_bytes
        self._pacing = Pacing(edit_seconds, EDITS_PER_SECOND)
        self._client = client
        self._token = token  # never logged
        self._roles = roles or LocalRoles()
        self._shard_names = shards or []
        self._shards: dict[str, Role] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._shard_lost = False
        self._sync_guild = sync_guild
        self._command_budget = command_budget
        self._stop_grace = stop_grace
        self._tree = app_commands.CommandTree(client)
        for command in build_app_commands(self._on_command):
            self._tree.add_command(command)
        self._tree.error(self._on_command_error)
        client.event(self.on_connect)
        client.event(self.on_message)
        self._ready = asyncio.Event()
        self._connected_shards = 0
        self._intake: asyncio.Queue[asyncio.Future[Ticket]] = asyncio.Queue()
        self._answers = Answers(runtime, self.name)
        self._runner: asyncio.Task[int] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._sync: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def client(self) -> discord.Client:
        return self._client

    @property
    def sync_task(self) -> asyncio.Task[None] | None:
        """The slash-command sync started at READY (it runs in the background)."""
        return self._sync

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Log in and connect; return once the gateway said READY (or the client gave up).
        ``AdapterError`` if another process runs one of this process's shards."""
        await self._take_shards()
        self._keeper = asyncio.create_task(self._keep_shards(), name="discord-shards")
        self._pump = asyncio.create_task(self._spawn_answers_in_order(), name="discord-intake")
        self._runner = asyncio.create_task(self._run(), name="discord-client")
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({self._runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._ready.is_set():
            self._sync = asyncio.create_task(self._sync_commands(), name="discord-sync")
            await self._answers.answer_waiting(self._queue_answer)

    def _queue_answer(self, ticket: Ticket) -> None:
        """Answer ``ticket`` in turn, after the messages that arrived before it."""
        done: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        done.set_result(ticket)
        self._intake.put_nowait(done)

    async def _take_shards(self) -> None:
        for name in self._shard_names:
            role = await self._roles.take_role(name, wait=False)
            if role is None:
                await self._release_shards()
                raise AdapterError(SHARD_TAKEN.format(role=name))
            self._shards[name] = role

    async def _keep_shards(self) -> None:
        """Take a shard's role again if it is lost (the database connection went); if another
        process has it now (this one stalled and was replaced), stop: exit code 1."""
        while self._shards:
            waiters = {asyncio.ensure_future(r.lost()): n for n, r in self._shards.items()}
            try:
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            for name in (waiters[w] for w in done):
                role = await self._roles.take_role(name, wait=False)
                if role is None:
                    log.error("discord: another process took over %s; stopping", name)
                    self._shard_lost = True
                    await self._client.close()
                    return
                self._shards[name] = role

    async def _release_shards(self) -> None:
        for role in self._shards.values():
            await role.release()
        self._shards.clear()

    async def _run(self) -> int:
        try:
            async with self._client:
                await self._client.start(self._token)
        except Exception as exc:  # every way the client can end; mapped to one line
            reason = fatal_reason(exc)
            if reason is None:
                log.exception("the Discord client stopped")
            else:
                log.error("%s", reason)
            return 1
        return 1 if self._shard_lost else 0

    async def finished(self) -> int:
        assert self._runner is not None, "start() first"
        return await asyncio.shield(self._runner)

    async def stop(self) -> None:
        """Stop taking messages, let answers in progress go out (bounded), disconnect."""
        if self._stopping:
            return
        self._stopping = True
        await self._answers.drain(self._stop_grace, self._intake.join())
        for task in (self._sync, self._pump, self._keeper):
            if task is not None:
                task.cancel()
        await self._client.close()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._release_shards()

    # ------------------------------------------------------------------ gateway events

    async def on_connect(self) -> None:
        """READY arrived (once per shard): the bot can receive from here on."""
        self._connected_shards += 1
        shards = len(getattr(self._client, "shard_ids", None) or []) or self._client.shard_count
        if self._connected_shards >= (shards or 1) and not self._ready.is_set():
            user = self._client.user
            log.info("discord: connected as %s (id %s)", user, user.id if user else "?")
            self._ready.set()

    async def on_message(self, message: discord.Message) -> None:
        bot = self._client.user
        if self._stopping or bot is None:
            return
        inbound = to_inbound(message, bot.id)
        if inbound is None:
            return
        notice = content_notice(message, inbound)
        if notice is None:
            accepting = self._accept(inbound, message.attachments)
            self._intake.put_nowait(asyncio.ensure_future(accepting))
        else:
            self._queue_answer(Ticket(inbound, reply=Reply(notice, ReplyKind.NOTICE)))

    async def _accept(
        self, inbound: InboundMessage, attachments: list[discord.Attachment]
    ) -> Ticket:
        """Store the message with its files, downloaded (those over the limit are not: the
        core tells the person)."""
        if attachments:
            files = [await download(a, self._max_file_bytes) for a in attachments]
            inbound = replace(inbound, files=tuple(files))
        return await self._runtime.accept(inbound)

    async def _spawn_answers_in_order(self) -> None:
        """Start each answer once its message is stored, in the order messages arrived."""
        while True:
            accepted = await self._intake.get()
            try:
                self._answers.spawn(self._answer(await accepted))
            except Exception:
                log.exception("discord: could not take a message")
            finally:
                self._intake.task_done()

    async def _answer(self, ticket: Ticket) -> None:
        route = DiscordRoute.parse(ticket.message.route)
        author = int(ticket.message.key.user_id)
        stream = GrowingReply(
            StreamEditor(self._client, route, author), _parts, self._pacing, route.channel_id
        )
        sink = ChannelSink(self._client, route, author, stream)
        await self._answers.answer(
            ticket, lambda: self._keep_typing(route.channel_id), stream, self._deliver, sink
        )

    async def _deliver(self, message: InboundMessage, reply: Reply) -> None:
        route = DiscordRoute.parse(message.route)
        if reply.private and route.guild_id is not None:
            reply = Reply(PRIVATE_IN_PUBLIC, ReplyKind.NOTICE)
        if not reply.is_empty:
            await send_reply(self._client, route, int(message.key.user_id), reply)

    async def _keep_typing(self, channel_id: int) -> None:
        channel = self._client.get_partial_messageable(channel_id)
        while True:
            try:
                await channel.typing()
            except discord.HTTPException as exc:
                log.debug("discord: typing indicator refused in %s: %s", channel_id, exc)
                return
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    # ------------------------------------------------------------------ speaking first

    @property
    def scope(self) -> DeliveryScope:
        return DeliveryScope(self.name)

    async def deliver(self, delivery: Delivery) -> bool:
        """A reminder: to the server channel it was set in (replying to the request), else to
        the person's DM channel (opened if discord.py has none cached)."""
        author = int(delivery.key.user_id)
        try:
            if delivery.chat is ChatKind.GROUP:
                route = DiscordRoute.parse(delivery.route)
            else:
                channel = await self._client.create_dm(discord.Object(author))
                route = DiscordRoute(channel.id, 0)
        except (ValueError, *SEND_ERRORS) as exc:
            log.warning("discord: cannot reach %s for a reminder: %s", delivery.key, exc)
            return False
        return await send_reply(self._client, route, author, delivery.reply)

    # ------------------------------------------------------------------ slash commands

    async def _sync_commands(self) -> None:
        guild = discord.Object(self._sync_guild) if self._sync_guild else None
        where = f"to server {self._sync_guild}" if guild else "globally"
        try:
            if guild is not None:
                self._tree.copy_global_to(guild=guild)
            synced = await self._tree.sync(guild=guild)
        except discord.Forbidden:
            log.warning(
                "discord: not allowed to register slash commands %s: invite the bot with the "
                "applications.commands scope (see the README)",
                where,
            )
        except (discord.HTTPException, app_commands.AppCommandError) as exc:
            log.warning("discord: could not register slash commands %s: %s", where, exc)
        else:
            log.info("discord: %d slash commands registered %s", len(synced), where)

    async def _on_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        await self._answers.spawn(self._answer_command(interaction, name, args))

    async def _answer_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        answering = self._answers.spawn(self._command_reply(interaction, name, args))
        done, _ = await asyncio.wait({answering}, timeout=self._command_budget)
        try:
            if not done:  # slow (e.g. queued behind this person's turn): keep the deadline
                await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await answering
            await respond_to_interaction(interaction, reply, deferred=not done)
        except SEND_ERRORS as exc:
            log.warning("discord: could not answer /%s: %s", name, exc)

    async def _command_reply(self, interaction: discord.Interaction, name: str, args: str) -> Reply:
        try:
            ticket = await self._runtime.accept(command_to_inbound(interaction, name, args))
            return await self._runtime.answer(ticket)
        except Exception:
            log.exception("discord: /%s failed", name)
            return Reply(SOMETHING_WENT_WRONG, ReplyKind.ERROR, private=True)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.warning("discord: slash command failed: %s", error)
        if not interaction.response.is_done():
            with contextlib.suppress(discord.HTTPException):
                await interaction.response.send_message(UNKNOWN_COMMAND, ephemeral=True)


def _parts(text: str) -> list[str]:
    return split_message(text, MESSAGE_LIMIT)
