"""The records the core passes around: agents, memory blocks, messages, passages, operations.

Plain frozen values, shared by the agent loop, prompt compilation, tools, commands and every
storage backend (``agentcore.storage``), so none of those needs the storage layer to name them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from agentcore.messages import Role, ToolCall
from agentcore.types import AgentKey, FileKind, InboundMessage


class Actor(enum.Enum):
    """Who changed a memory block; recorded in its history."""

    AGENT = "agent"
    OPERATOR = "operator"
    USER = "user"
    SYSTEM = "system"
    CONSOLIDATION = "consolidation"  # sleep-time consolidation after a session


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: int
    key: AgentKey
    display_name: str
    created_at: datetime
    last_user_at: datetime | None  # platform time of the person's latest message
    session_count: int
    message_count: int
    passage_count: int
    context_start_id: int  # messages with id >= this are in the context window
    summary: str  # the running (recursive) summary of everything before context_start_id
    pressure_warned: bool  # the one-time memory-pressure note was given
    # Core memory as the prompt's stable prefix shows it (agentcore.memory.prefix), encoded;
    # "" means the blocks as they are.
    prefix_blocks: str = ""

    @classmethod
    def fresh(
        cls, agent_id: int, key: AgentKey, display_name: str, created_at: datetime
    ) -> AgentRecord:
        """A just-created agent: no messages, sessions, summary or notes yet."""
        return cls(
            id=agent_id,
            key=key,
            display_name=display_name,
            created_at=created_at,
            last_user_at=None,
            session_count=0,
            message_count=0,
            passage_count=0,
            context_start_id=0,
            summary="",
            pressure_warned=False,
        )


@dataclass(frozen=True, slots=True)
class NewAgent:
    display_name: str
    created_at: datetime
    blocks: tuple[BlockSpec, ...]


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """A block to create with a new agent."""

    label: str
    value: str
    limit: int
    description: str = ""
    read_only: bool = False

    def block(self, now: datetime) -> Block:
        """The block as first stored: version 1, written ``now``."""
        return Block(self.label, self.value, self.limit, self.description, self.read_only, 1, now)


@dataclass(frozen=True, slots=True)
class Block:
    label: str
    value: str
    limit: int
    description: str
    read_only: bool
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BlockVersion:
    version: int
    actor: Actor
    actor_name: str
    old_value: str | None
    new_value: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SharedBlock:
    label: str
    value: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: Role
    content: str | None
    created_at: datetime
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewPassage:
    content: str
    tags: tuple[str, ...]
    created_at: datetime
    source: str = ""  # the document it was read from, if any (see ``Passage``)
    page: int | None = None


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """A whole agent to store at once (an Agent File import)."""

    display_name: str
    blocks: tuple[BlockSpec, ...]
    messages: tuple[NewMessage, ...]
    passages: tuple[NewPassage, ...] = ()
    in_context: int = 0  # how many of the newest messages start in the context window
    summary: str = ""

    def window_start(self, ids: Sequence[int]) -> int:
        """Where the context window starts, given the ids its messages were stored under: at
        its in-context messages, or after the last message."""
        if self.in_context and ids:
            return ids[max(len(ids) - self.in_context, 0)]
        return ids[-1] + 1 if ids else 0

    @property
    def last_user_at(self) -> datetime | None:
        """When the person last wrote, in the snapshot."""
        return next((m.created_at for m in reversed(self.messages) if m.role is Role.USER), None)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    role: Role
    content: str | None
    created_at: datetime
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserActivity:
    """Bookkeeping that travels with a user's message in the same transaction."""

    sent_at: datetime
    session_count: int
    display_name: str


@dataclass(frozen=True, slots=True)
class TurnState:
    """Everything a turn starts from, read together."""

    agent: AgentRecord
    blocks: list[Block]
    shared: list[SharedBlock]
    context: list[StoredMessage]  # the in-context messages, oldest first


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A received message waiting for its turn (see ``InboxStore``)."""

    id: int
    message: InboundMessage
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OpenTurn:
    """A turn that took up a person's messages and did not finish (its process died, or lost its
    database connection): the latest message it took up (where the answer goes), and its reply
    if the turn stored one before it stopped (then only sending it is left)."""

    message: InboundMessage
    reply: str | None


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    role: Role
    content: str
    created_at: datetime
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class Passage:
    id: int
    content: str
    tags: tuple[str, ...]
    created_at: datetime
    score: float = 0.0
    source: str = ""  # the document it was read from (its file name), if any
    page: int | None = None  # that document's page (or part) number


class DocState(enum.Enum):
    """Where a document is on its way into archival memory."""

    NONE = ""  # not a document
    READING = "reading"  # being read, ``pages_read`` of ``pages`` done
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file a person sent, as stored (the bytes only where asked for)."""

    id: int
    kind: FileKind
    filename: str
    mime_type: str
    size: int  # bytes as sent (declared by the platform if it was too large to download)
    created_at: datetime
    note: str = ""  # the model's description, the transcript, or why it was not read
    state: DocState = DocState.NONE
    pages: int = 0  # documents: pages (or parts) in all
    pages_read: int = 0
    message_id: int | None = None  # the message it came with, once that is in recall
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A file waiting, with its message, to be prepared before that message's turn."""

    pending_id: int  # the waiting message it came with
    caption: str  # that message's text
    file: StoredFile  # with its bytes


@dataclass(frozen=True, slots=True)
class FileUpdate:
    """What preparing a waiting file made of it (see ``FileStore.prepare_pending``)."""

    file_id: int
    note: str
    data: bytes | None = None  # replaces the stored bytes (a scaled image)
    state: DocState = DocState.NONE
    pages: int = 0
    mime_type: str = ""  # the type of the new bytes ('' while they stay as they were)


@dataclass(frozen=True, slots=True)
class DocumentPassage:
    """One passage of a document being read into archival memory."""

    content: str
    page: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StartupRun:
    started_at: datetime
    total_ms: float
    rss_mb: float
    phases: tuple[tuple[str, float], ...]
    id: int = 0


class Purpose(enum.Enum):
    """What a model call was for; every call serving a person counts toward their budget."""

    TURN = "turn"
    EVENT = "event"  # a turn the agent takes on its own (a reminder or check-in coming due)
    SUMMARY = "summary"
    CONSOLIDATION = "consolidation"
    IMAGE = "image"  # describing a photo the person sent


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    agent_id: int | None
    created_at: datetime
    latency_ms: float
    ok: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # the part of the prompt the provider served from its cache
    estimated: bool = False  # the provider reported no usage: the counts are local estimates
    purpose: Purpose = Purpose.TURN
    model: str = ""
    day: date | None = None  # the local day it counts toward (budgets); None = created_at's UTC day


@dataclass(frozen=True, slots=True)
class UsageDay:
    """Model calls of one day and one model, added up (for one person, or for everyone)."""

    day: date
    model: str
    calls: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    estimated_calls: int = 0  # calls whose counts are local estimates

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TokensSpent:
    """Tokens counted toward one day's budgets: one person's and everyone's together."""

    person: int
    everyone: int


@dataclass(frozen=True, slots=True)
class PersonUsage:
    """One person's model use over a span, per model (the operator's usage list)."""

    key: AgentKey
    display_name: str
    days: tuple[UsageDay, ...]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    verb: str
    target: str
    created_at: datetime
    detail: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class AgentSummary:
    """One row of the operator's user list."""

    key: AgentKey
    display_name: str
    last_user_at: datetime | None
    message_count: int
    core_memory_chars: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    agents: int
    messages: int
    passages: int
    size_bytes: int
    llm_calls_today: int = 0
    tokens_today: int = 0
    llm_latencies_ms: tuple[float, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Unconsolidated:
    """A person with messages no consolidation has read yet."""

    agent_id: int
    key: AgentKey
    after_id: int  # messages with a larger id are not consolidated


@dataclass(frozen=True, slots=True)
class BlockEdit:
    label: str
    value: str
    version: int  # the block's version the edit was made against


@dataclass(frozen=True, slots=True)
class ConsolidationRun:
    """One consolidation: which messages it read, what it changed, what it cost."""

    agent_id: int
    after_id: int  # it read the messages after this id...
    through_id: int  # ...up to this one
    created_at: datetime
    outcome: str  # "changed", "nothing" (nothing worth keeping) or "invalid" (unusable answer)
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    edits: tuple[BlockEdit, ...] = ()
    notes: tuple[str, ...] = ()

    def note_passages(self) -> list[NewPassage]:
        """The notes as archival passages, tagged so they can be told from the agent's own."""
        return [NewPassage(note, ("consolidation",), self.created_at) for note in self.notes]


class VectorKind(enum.Enum):
    """What a stored vector stands for: a searchable message, or an archival passage."""

    MESSAGE = "message"
    PASSAGE = "passage"


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    id: int
    name: str
    dims: int | None  # known once the endpoint has returned vectors


@dataclass(frozen=True, slots=True)
class Unembedded:
    """A row that has no vector of the model yet, with the text to embed."""

    id: int
    agent_id: int
    text: str


@dataclass(frozen=True, slots=True)
class NewVector:
    id: int  # the message's or passage's id
    agent_id: int
    vector: bytes  # int8 components (``agentcore.search.vectors.quantize``)


@dataclass(frozen=True, slots=True)
class EmbeddingProgress:
    """How many searchable rows have a vector of one model, for ``/admin stats``."""

    model: str
    messages: int
    messages_embedded: int
    passages: int
    passages_embedded: int
