"""Telegram updates → the core's ``InboundMessage``: pure functions, no I/O.

``translate`` decides what the bot does with an update:

- a message it should answer → ``InboundMessage`` (the sender's stable id, never their name; the
  message's own ``date``; ``ChatKind.GROUP`` for groups; our @mention and ``@botname`` suffix
  on commands removed; a ``route`` to answer it by, even after a restart);
- a photo, voice note, audio file or document → ``InboundMessage`` with the caption as text;
  ``file_refs`` names the files for the adapter to download;
- a message addressed to it with nothing readable (a sticker, a video, a location) →
  ``Unreadable``, so the person gets a short notice instead of silence;
- anything else → None: edits, channel posts, service messages, other bots, and group messages
  that are not for us (no @mention, not a reply to us, not ``/cmd@ourname``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from agentcore.types import AgentKey, ChatKind, InboundMessage

PLATFORM = "telegram"
_GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who "us" is, from getMe: needed to tell whether a group message is addressed to us."""

    id: int
    username: str  # without the "@"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message came from, so its answer can be addressed (stored as small JSON)."""

    chat_id: int
    message_id: int
    thread_id: int | None = None  # forum topic, if any
    update_id: int | None = None  # lets a restart recognise an update it has already stored

    def to_json(self) -> str:
        data = {"chat": self.chat_id, "message": self.message_id}
        if self.thread_id is not None:
            data["thread"] = self.thread_id
        if self.update_id is not None:
            data["update"] = self.update_id
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Route:
        """Raises ValueError for anything that is not a route written by ``to_json``."""
        try:
            data: Any = json.loads(text)
            return cls(
                int(data["chat"]),
                int(data["message"]),
                _optional_int(data.get("thread")),
                _optional_int(data.get("update")),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a Telegram route: {text!r}") from exc


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message for us that holds nothing we can read (no text, no caption)."""

    key: AgentKey
    chat: ChatKind
    route: Route


def translate(update: Update, me: BotIdentity) -> InboundMessage | Unreadable | None:
    message = update.message  # new messages only: edits arrive as edited_message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None  # includes anonymous group admins, who all share one bot account
    if message.chat.type == ChatType.PRIVATE:
        chat = ChatKind.PRIVATE
    elif message.chat.type in _GROUP_TYPES and _addressed_to(message, me):
        chat = ChatKind.GROUP
    else:
        return None
    key = AgentKey(PLATFORM, str(message.from_user.id))
    route = Route(
        message.chat.id,
        message.message_id,
        message.message_thread_id if message.is_topic_message else None,
        update.update_id,
    )
    text = message.text if message.text is not None else message.caption
    if text is None:
        if not file_refs(message):
            return Unreadable(key, chat, route) if message.effective_attachment else None
        text = ""
    return InboundMessage(
        key,
        clean_text(text, me.username),
        message.date,
        display_name=message.from_user.first_name or message.from_user.username or "",
        chat=chat,
        route=route.to_json(),
        source=f"update:{update.update_id}",  # a redelivery after a crash is recognised
    )


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file of a message, to be downloaded with getFile."""

    file_id: str
    filename: str
    mime_type: str
    size: int | None  # as Telegram declares it (None if it does not say)
    voice: bool = False


def file_refs(message: Message) -> list[FileRef]:
    """The files in ``message`` the core can use: the largest size of a photo, a voice note,
    an audio file, a document."""
    refs: list[FileRef] = []
    if message.photo:
        best = message.photo[-1]  # Telegram lists a photo's sizes smallest first
        refs.append(FileRef(best.file_id, "photo.jpg", "image/jpeg", best.file_size))
    if message.voice is not None:
        voice = message.voice
        mime = voice.mime_type or "audio/ogg"
        refs.append(FileRef(voice.file_id, "voice.ogg", mime, voice.file_size, voice=True))
    if message.audio is not None:
        audio = message.audio
        name = audio.file_name or "audio.mp3"
        refs.append(FileRef(audio.file_id, name, audio.mime_type or "audio/mpeg", audio.file_size))
    if message.document is not None:
        doc = message.document
        mime = doc.mime_type or "application/octet-stream"
        refs.append(FileRef(doc.file_id, doc.file_name or "document", mime, doc.file_size))
    return refs


def _addressed_to(message: Message, me: BotIdentity) -> bool:
    """A group message is for us if it @mentions us, replies to us, or is ``/cmd@ourname``."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    kinds: list[str | None] = [
        MessageEntity.MENTION,
        MessageEntity.TEXT_MENTION,
        MessageEntity.BOT_COMMAND,
    ]
    entities = (
        message.parse_entities(kinds) if message.text else message.parse_caption_entities(kinds)
    )
    ours = "@" + me.username.lower()
    for entity, text in entities.items():
        if entity.type == MessageEntity.TEXT_MENTION:
            if entity.user is not None and entity.user.id == me.id:
                return True
        elif entity.type == MessageEntity.MENTION:
            if text.lower() == ours:
                return True
        elif entity.offset == 0 and text.lower().endswith(ours):
            return True
    return False


def clean_text(text: str, username: str) -> str:
    """Drop platform decorations: ``/cmd@ourname`` → ``/cmd``, and our @mentions (with the
    space before and a ``,`` or ``:`` after them), so the agent reads what the person said."""
    name = re.escape(username)
    text = re.sub(rf"^(/[A-Za-z0-9_]+)@{name}(?![A-Za-z0-9_])", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(rf"[ \t]*(?<![\w@])@{name}(?!\w)[,:]?", "", text, flags=re.IGNORECASE)
    return text.strip()


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
