"""Platform-neutral value types that cross the boundary between adapters and the core.

Adapters translate their platform's events into these (pure functions, no I/O) and render
``Reply`` objects back; nothing platform-specific ever enters ``agentcore``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

_PLATFORM_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_USER_ID_MAX = 128


class InvalidAgentKey(ValueError):
    """Raised when a ``platform:id`` string cannot name a user."""


@dataclass(frozen=True, slots=True, order=True)
class AgentKey:
    """Who an agent belongs to: the platform and that platform's stable user id.

    Never a display name: names change and collide, ids do not.
    """

    platform: str
    user_id: str

    def __post_init__(self) -> None:
        if not _PLATFORM_RE.match(self.platform):
            raise InvalidAgentKey(f"invalid platform name {self.platform!r}")
        if not self.user_id or len(self.user_id) > _USER_ID_MAX or not self.user_id.isprintable():
            raise InvalidAgentKey(f"invalid user id {self.user_id!r}")

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> AgentKey:
        """Parse ``platform:id`` (e.g. ``telegram:42``, ``console:brad``)."""
        platform, sep, user_id = text.strip().partition(":")
        if not sep:
            raise InvalidAgentKey(f"expected platform:id, got {text!r}")
        return cls(platform.lower(), user_id)


def clean_text(text: str) -> str:
    """Text safe to store and send on: surrogate halves that form a pair are joined, lone ones
    (which no encoder accepts) become U+FFFD, and NUL characters are dropped. Everything else
    is kept exactly as written."""
    if text.isascii():
        return text.replace("\x00", "")
    joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return joined.replace("\x00", "")


class ChatKind(enum.Enum):
    """Where a message was said; decides what the agent may reveal in its reply."""

    PRIVATE = "private"  # a DM / private chat / the terminal
    GROUP = "group"  # a group chat or server channel other people can read


class FileKind(enum.Enum):
    """What the core does with a file a person sent."""

    IMAGE = "image"  # shown to the model when it can see, described for recall
    VOICE = "voice"  # a voice note recorded in the app: transcribed, stored as spoken
    AUDIO = "audio"  # an audio file: transcribed too
    DOCUMENT = "document"  # text, Markdown, PDF, DOCX: read into archival memory
    OTHER = "other"  # a kind the bot cannot read (it says so)


_DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain",
        "text/markdown",
        "text/x-markdown",
    }
)
_DOCUMENT_SUFFIXES = (".pdf", ".docx", ".txt", ".md", ".markdown", ".text")


@dataclass(frozen=True, slots=True)
class InboundFile:
    """A file a person sent (photo, voice note, document), already downloaded by the adapter.

    ``data`` is never shown by ``repr`` (so never logged). A file over the size limit is not
    downloaded: ``data`` is empty and ``size`` is what the platform declared.
    """

    filename: str
    mime_type: str
    data: bytes = field(repr=False)
    size: int = -1  # bytes as declared; -1: len(data)
    voice: bool = False  # recorded as a voice note (not an uploaded audio file)

    @property
    def declared_size(self) -> int:
        return len(self.data) if self.size < 0 else self.size

    @property
    def kind(self) -> FileKind:
        mime = self.mime_type.lower().split(";")[0].strip()
        if self.voice:
            return FileKind.VOICE
        if mime.startswith("image/"):
            return FileKind.IMAGE
        if mime.startswith("audio/"):
            return FileKind.AUDIO
        if mime in _DOCUMENT_TYPES or self.filename.lower().endswith(_DOCUMENT_SUFFIXES):
            return FileKind.DOCUMENT
        return FileKind.OTHER


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a person, as the core sees it."""

    key: AgentKey
    text: str
    sent_at: datetime  # the platform's own timestamp, timezone-aware
    display_name: str = ""
    chat: ChatKind = ChatKind.PRIVATE
    # Opaque to the core: how the adapter finds where to answer (e.g. a chat and message id).
    # It is stored with the pending message, so an answer can still go out after a restart.
    route: str = ""
    # The platform's own id for this message (e.g. a Telegram update id): a message the
    # platform delivers twice (say, after a crash) is stored and answered once.
    source: str = ""
    # Photos, voice notes and documents sent with the message (the text is their caption).
    files: tuple[InboundFile, ...] = ()

    def __post_init__(self) -> None:
        if self.sent_at.tzinfo is None:
            raise ValueError("InboundMessage.sent_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the adapter should send along with the reply (e.g. a memory export)."""

    filename: str
    data: bytes
    mime_type: str = "application/octet-stream"


class ReplyKind(enum.Enum):
    AGENT = "agent"  # the agent's answer
    COMMAND = "command"  # output of a user or operator command
    NOTICE = "notice"  # a short system notice (rate limit, unsupported content, ...)
    ERROR = "error"  # something failed; the text is safe to show the person


@dataclass(frozen=True, slots=True)
class Reply:
    """What the core answers. ``text`` is Markdown; adapters render and split it."""

    text: str
    kind: ReplyKind = ReplyKind.AGENT
    # Replies that show stored memory should only be visible to the asker where the platform
    # supports it (Discord ephemeral interaction responses).
    private: bool = False
    attachments: tuple[Attachment, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and not self.attachments


class ReplySink(Protocol):
    """Where a turn speaks while it runs, given by the adapter that will send its answer:
    notices (a photo the model cannot see, what a voice note said, a document's progress)
    arrive as separate short messages before the answer, or after it for background work."""

    async def notice(self, text: str) -> None:
        """Send ``text`` (Markdown) to the person now. Never raises for platform errors."""
        ...

    async def grow(self, text: str) -> None:
        """The answer being written, so far (streaming): show it in place of what was shown
        before. The turn's ``Reply`` then has the final text. Never raises."""
        ...


class NoticeList:
    """A ``ReplySink`` for callers that only take one reply (the answer starts with the
    notices): it keeps them."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def grow(self, text: str) -> None:
        pass  # only the final answer is kept


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """Something that happened without the person writing (a reminder came due): the input of
    a turn the agent takes on its own. Stored in the person's history as a system message."""

    key: AgentKey
    text: str  # what the agent is told, e.g. "scheduled: call the dentist, set on ..."
    at: datetime
    chat: ChatKind = ChatKind.PRIVATE  # where the answer will be read
    route: str = ""  # that chat's route if it is a group ('' for the private chat)
    # Stored and sent as the answer if the model cannot be reached, so a reminder still
    # reminds; '' to send nothing then.
    fallback: str = ""
