"""Core replies to Discord messages: split to 2,000 characters, files attached, and no pings.

Model output is untrusted text: every send carries ``allowed_mentions`` that disable @everyone,
@here and role pings, and allow a user ping only for the author, only when the reply itself
mentions them. The client is configured the same way, as a second line of defence.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

import aiohttp
import discord

from agentcore.types import Attachment, InboundFile, Reply, ReplyKind
from bots.discord.translate import DiscordRoute
from bots.streaming import GrowingReply
from bots.text import split_message

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters per Discord message
FILES_PER_MESSAGE = 10
NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=False)
EMPTY_COMMAND_REPLY = "Done."
# What a send can fail with once discord.py has given up retrying (timeouts are OSErrors).
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Discord message to send: text (≤ 2,000 characters) and/or files."""

    content: str | None
    attachments: tuple[Attachment, ...] = ()


def plan_messages(reply: Reply, limit: int = MESSAGE_LIMIT) -> list[Outgoing]:
    """The messages that carry ``reply``, in order; files ride on the last text part."""
    parts: list[str | None] = list(split_message(reply.text, limit))
    batches = [
        reply.attachments[i : i + FILES_PER_MESSAGE]
        for i in range(0, len(reply.attachments), FILES_PER_MESSAGE)
    ]
    if not parts and batches:
        parts = [None]
    planned = [Outgoing(part) for part in parts[:-1]]
    if parts:
        planned.append(Outgoing(parts[-1], batches[0] if batches else ()))
    planned.extend(Outgoing(None, batch) for batch in batches[1:])
    return planned


def allowed_mentions_for(content: str | None, author_id: int) -> discord.AllowedMentions:
    """Nobody is pinged, except the author when the text itself mentions them."""
    if content and re.search(rf"<@!?{author_id}>", content):
        return discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(author_id)], replied_user=True
        )
    return NO_PINGS


def to_files(attachments: tuple[Attachment, ...]) -> list[discord.File]:
    return [discord.File(io.BytesIO(a.data), filename=a.filename) for a in attachments]


async def send_reply(
    client: discord.Client, route: DiscordRoute, author_id: int, reply: Reply
) -> bool:
    """Send ``reply`` where ``route`` says, in order; in servers each part replies to the
    triggering message. Returns False (and logs why) if Discord refused a part."""
    channel = client.get_partial_messageable(route.channel_id, guild_id=route.guild_id)
    reference = None
    if route.guild_id is not None:
        trigger = channel.get_partial_message(route.message_id)
        reference = trigger.to_reference(fail_if_not_exists=False)
    for outgoing in plan_messages(reply):
        try:
            await _send_one(channel, outgoing, reference, author_id)
        except SEND_ERRORS as exc:
            log.warning("could not send a reply in channel %s: %s", route.channel_id, exc)
            return False
    return True


async def _send_one(
    channel: discord.PartialMessageable,
    outgoing: Outgoing,
    reference: discord.MessageReference | None,
    author_id: int,
) -> None:
    files = to_files(outgoing.attachments)
    mentions = allowed_mentions_for(outgoing.content, author_id)
    if reference is None:
        await channel.send(outgoing.content, files=files, allowed_mentions=mentions)
    else:
        await channel.send(
            outgoing.content, files=files, reference=reference, allowed_mentions=mentions
        )


async def respond_to_interaction(
    interaction: discord.Interaction, reply: Reply, *, deferred: bool
) -> None:
    """Answer a slash command: ephemeral when the reply is private (and always after a defer,
    which had to choose before the reply was known)."""
    planned = plan_messages(reply) or [Outgoing(EMPTY_COMMAND_REPLY)]
    ephemeral = reply.private or deferred
    author_id = interaction.user.id
    first, rest = planned[0], planned[1:]
    if deferred:
        rest = planned
    else:
        await interaction.response.send_message(
            first.content,
            files=to_files(first.attachments),
            ephemeral=ephemeral,
            allowed_mentions=allowed_mentions_for(first.content, author_id),
        )
    for outgoing in rest:
        await interaction.followup.send(
            outgoing.content or discord.utils.MISSING,
            files=to_files(outgoing.attachments),
            ephemeral=ephemeral,
            allowed_mentions=allowed_mentions_for(outgoing.content, author_id),
        )


class ChannelSink:
    """A turn's notices, sent where its answer goes, and its answer as it grows."""

    def __init__(
        self, client: discord.Client, route: DiscordRoute, author_id: int, stream: GrowingReply
    ) -> None:
        self._client = client
        self._route = route
        self._author_id = author_id
        self._stream = stream

    async def notice(self, text: str) -> None:
        await send_reply(self._client, self._route, self._author_id, Reply(text, ReplyKind.NOTICE))

    async def grow(self, text: str) -> None:
        await self._stream.grow(text)


class StreamEditor:
    """One streamed answer's messages in a Discord channel (``bots.streaming.MessageEditor``);
    in servers the first one replies to the question. discord.py waits out 429s itself."""

    def __init__(self, client: discord.Client, route: DiscordRoute, author_id: int) -> None:
        self._channel = client.get_partial_messageable(route.channel_id, guild_id=route.guild_id)
        self._author_id = author_id
        self._reference: discord.MessageReference | None = None
        if route.guild_id is not None:
            trigger = self._channel.get_partial_message(route.message_id)
            self._reference = trigger.to_reference(fail_if_not_exists=False)

    async def send(self, text: str) -> str | None:
        mentions = allowed_mentions_for(text, self._author_id)
        try:
            if self._reference is None:
                sent = await self._channel.send(text, allowed_mentions=mentions)
            else:
                sent = await self._channel.send(
                    text, reference=self._reference, allowed_mentions=mentions
                )
        except SEND_ERRORS as exc:
            log.warning("could not send a streamed answer in %s: %s", self._channel.id, exc)
            return None
        self._reference = None
        return str(sent.id)

    async def edit(self, message_id: str, text: str) -> bool:
        message = self._channel.get_partial_message(int(message_id))
        try:
            await message.edit(
                content=text, allowed_mentions=allowed_mentions_for(text, self._author_id)
            )
        except SEND_ERRORS as exc:
            log.warning("could not edit a streamed answer in %s: %s", self._channel.id, exc)
            return False
        return True

    async def delete(self, message_id: str) -> None:
        try:
            await self._channel.get_partial_message(int(message_id)).delete()
        except SEND_ERRORS as exc:
            log.info("could not delete a streamed part in %s: %s", self._channel.id, exc)


async def download(attachment: discord.Attachment, limit: int) -> InboundFile:
    """An attachment's bytes from Discord's CDN: none if it is over ``limit`` or could not be
    fetched (the core tells the person which)."""
    mime = (attachment.content_type or "application/octet-stream").split(";")[0]
    voice = attachment.is_voice_message()
    if attachment.size > limit:
        return InboundFile(attachment.filename, mime, b"", attachment.size, voice)
    try:
        data = await attachment.read()
    except SEND_ERRORS as exc:
        log.warning("could not download an attachment (%s): %s", mime, exc)
        return InboundFile(attachment.filename, mime, b"", attachment.size, voice)
    return InboundFile(attachment.filename, mime, data, voice=voice)
