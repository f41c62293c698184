"""Discord events to core messages: pure functions, no I/O.

What the bot answers: every message in a DM; in a server only messages that @mention it or reply
to one of its messages (the mention itself is stripped). Messages from bots (itself included),
webhooks and system messages (joins, pins, ...) are never answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import discord

from agentcore.types import AgentKey, ChatKind, InboundMessage

PLATFORM = "discord"
STICKER_NOTICE = (
    "I can't read stickers. I read text, photos, voice messages, audio, PDFs, Word documents "
    "and text files."
)
# Plain messages and replies; everything else (joins, pins, boosts, thread starts) is a system
# message nobody wrote to the bot.
_CONVERSATION_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})


@dataclass(frozen=True, slots=True)
class DiscordRoute:
    """Where an answer goes: stored with the pending message as ``InboundMessage.route``, so a
    reply can still be addressed (and reference its trigger) after a restart."""

    channel_id: int
    message_id: int  # the triggering message (or interaction) id
    guild_id: int | None = None

    def to_json(self) -> str:
        data: dict[str, int] = {"channel": self.channel_id, "message": self.message_id}
        if self.guild_id is not None:
            data["guild"] = self.guild_id
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> DiscordRoute:
        """Read a route written by ``to_json``; ``ValueError`` if it is not one."""
        try:
            data = json.loads(text)
            guild = data.get("guild")
            return cls(int(data["channel"]), int(data["message"]), int(guild) if guild else None)
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a Discord route: {text!r}") from exc


def agent_key(user_id: int) -> AgentKey:
    return AgentKey(PLATFORM, str(user_id))


def to_inbound(message: discord.Message, bot_id: int) -> InboundMessage | None:
    """The core's view of ``message``, or None if the bot should not answer it."""
    if _ignored_author(message, bot_id) or message.type not in _CONVERSATION_TYPES:
        return None
    guild_id = _guild_id(message)
    if guild_id is not None and not addresses_bot(message, bot_id):
        return None
    return InboundMessage(
        agent_key(message.author.id),
        _readable_text(message, bot_id),
        message.created_at,
        display_name=message.author.display_name,
        chat=ChatKind.PRIVATE if guild_id is None else ChatKind.GROUP,
        route=DiscordRoute(message.channel.id, message.id, guild_id).to_json(),
        source=str(message.id),  # a message delivered twice (gateway replay) is answered once
    )


def content_notice(message: discord.Message, inbound: InboundMessage) -> str | None:
    """A notice for messages that carry only what the bot cannot read (stickers); files go
    to the core, which says what it can't read."""
    if inbound.text.strip() or message.attachments or not message.stickers:
        return None
    return STICKER_NOTICE


def addresses_bot(message: discord.Message, bot_id: int) -> bool:
    """An @mention of the bot (not @everyone/@here), or a reply to one of its messages."""
    if bot_id in message.raw_mentions:
        return True
    reference = message.reference
    replied_to = reference.resolved if reference is not None else None
    return isinstance(replied_to, discord.Message) and replied_to.author.id == bot_id


def command_to_inbound(interaction: discord.Interaction, name: str, args: str) -> InboundMessage:
    """A slash command as the text command the core understands (``/name args``).

    It counts as private even in a server: only the invoker sees the answers that matter
    (memory, operator output), because those are sent ephemerally.
    """
    guild_id = interaction.guild_id
    return InboundMessage(
        agent_key(interaction.user.id),
        f"/{name} {args.strip()}".strip(),
        interaction.created_at,
        display_name=interaction.user.display_name,
        chat=ChatKind.PRIVATE,
        route=DiscordRoute(interaction.channel_id or 0, interaction.id, guild_id).to_json(),
    )


def _ignored_author(message: discord.Message, bot_id: int) -> bool:
    return message.author.bot or message.webhook_id is not None or message.author.id == bot_id


def _guild_id(message: discord.Message) -> int | None:
    if message.guild is not None:
        return message.guild.id
    # A server channel the client has not cached yet still says which server it belongs to.
    guild_id = getattr(message.channel, "guild_id", None)
    return guild_id if isinstance(guild_id, int) else None


def _readable_text(message: discord.Message, bot_id: int) -> str:
    """The content without the bot's own mention, other users' mentions shown as @name."""
    text = re.sub(rf"<@!?{bot_id}>[,:]?\s*", "", message.content)
    for user in message.mentions:
        if user.id != bot_id:
            name = f"@{user.display_name}"
            text = text.replace(f"<@{user.id}>", name).replace(f"<@!{user.id}>", name)
    return text.strip()
