"""The storage seam: row types and small Protocols, one per concern.

``Storage`` is the union every backend implements; the rest of the core depends on the
narrowest protocol it needs. Every backend runs the same contract suite (tests/contract/).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from agentcore.messages import Role, ToolCall
from agentcore.search.analysis import index_terms
from agentcore.types import AgentKey, InboundMessage

SEARCHABLE_ROLES = frozenset({Role.USER, Role.ASSISTANT})


class StorageError(Exception):
    """The store could not complete an operation (locked, full, read-only, corrupt)."""


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


def message_terms(role: Role, content: str | None) -> str | None:
    """What the search index stores for a message: its index terms, space-separated, or None
    for rows that are not searchable (tool calls and results, system notes)."""
    if role not in SEARCHABLE_ROLES or content is None:
        return None
    return " ".join(index_terms(content))


def passage_terms(content: str, tags: Sequence[str]) -> str:
    """What the search index stores for an archival passage: its text's terms, then its tags'."""
    return " ".join(index_terms(content) + index_terms(" ".join(tags)))


@dataclass(frozen=True, slots=True)
class NewPassage:
    content: str
    tags: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """A whole agent to store at once (an Agent File import)."""

    display_name: str
    blocks: tuple[BlockSpec, ...]
    messages: tuple[NewMessage, ...]
    passages: tuple[NewPassage, ...] = ()
    in_context: int = 0  # how many of the newest messages start in the context window
    summary: str = ""


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


@dataclass(frozen=True, slots=True)
class StartupRun:
    started_at: datetime
    total_ms: float
    rss_mb: float
    phases: tuple[tuple[str, float], ...]
    id: int = 0


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    agent_id: int | None
    created_at: datetime
    latency_ms: float
    ok: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0


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


class AgentStore(Protocol):
    async def load_agent(self, key: AgentKey) -> AgentRecord | None: ...

    async def load_turn(self, key: AgentKey) -> TurnState | None:
        """The agent, its blocks, the shared blocks and its in-context messages."""
        ...

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord | None:
        """Create the agent with its blocks atomically; None if it exists already."""
        ...

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None: ...

    async def fold_context(
        self, agent_id: int, summary: str, context_start_id: int, now: datetime
    ) -> None:
        """Record a new running summary and move the context window start (summarisation)."""
        ...

    async def reset_context(self, agent_id: int, now: datetime) -> None:
        """Clear the running summary and the in-context messages (stored rows stay)."""
        ...

    async def list_agents(self, limit: int) -> list[AgentSummary]: ...

    async def delete_agent(self, agent_id: int) -> None:
        """Erase the agent and everything stored for it. Audit entries that name the person
        are redacted to the platform alone, so only "an erasure happened" remains."""
        ...

    async def replace_agent(
        self, key: AgentKey, snapshot: AgentSnapshot, now: datetime
    ) -> AgentRecord:
        """Erase any agent of ``key`` and store ``snapshot`` in its place, atomically."""
        ...


class BlockStore(Protocol):
    async def list_blocks(self, agent_id: int) -> list[Block]: ...

    async def save_block(
        self, agent_id: int, label: str, value: str, actor: Actor, actor_name: str, now: datetime
    ) -> Block:
        """Replace a block's value and record the change in its history.

        Raises KeyError if the agent has no block with that label.
        """
        ...

    async def block_history(self, agent_id: int, label: str) -> list[BlockVersion]: ...

    async def list_shared_blocks(self) -> list[SharedBlock]: ...

    async def set_shared_block(self, label: str, value: str, by: str, now: datetime) -> None: ...

    async def delete_shared_block(self, label: str) -> bool: ...


class MessageStore(Protocol):
    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        """Store messages in one transaction and return their ids, in order."""
        ...

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        """Messages with id >= since_id, oldest first (the in-context window)."""
        ...

    async def search_messages(
        self,
        agent_id: int,
        query: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """Full-text search over this agent's user and assistant messages, best first.

        ``start``/``end`` bound ``created_at`` (inclusive). Any query text is safe.
        """
        ...

    async def recent_matches(self, agent_id: int, query: str, limit: int) -> list[SearchHit]:
        """This agent's user and assistant messages matching ``query``, newest first."""
        ...

    async def all_messages(self, agent_id: int) -> list[StoredMessage]: ...


class InboxStore(Protocol):
    """Messages are stored on arrival and moved into recall memory when their turn starts."""

    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        """Store an arriving message; None if its ``source`` was stored before (a redelivery)."""
        ...

    async def prune_inbox(self, before: datetime) -> int:
        """Forget claimed messages received before ``before`` (their copies live in recall)."""
        ...

    async def claim_pending(
        self, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
    ) -> list[StoredMessage]:
        """In one transaction, move this person's pending messages with id <= ``up_to_id``
        into the agent's recall memory (as user messages, with their platform timestamps),
        oldest first. Empty if none is left: an earlier turn answered them together."""
        ...

    async def start_agent(
        self,
        key: AgentKey,
        up_to_id: int,
        agent: NewAgent,
        activity: UserActivity,
    ) -> tuple[AgentRecord, list[StoredMessage]] | None:
        """A new person's first turn: create their agent and take up their waiting messages
        (as ``claim_pending`` does) in one transaction. Returns the agent as created (before
        this turn) and the messages; None, changing nothing, if the person has an agent
        already (created meanwhile by another process)."""
        ...

    async def count_pending(self, key: AgentKey) -> int: ...

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        """Messages still waiting (e.g. after a crash), oldest first."""
        ...


class PassageStore(Protocol):
    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int: ...

    async def search_passages(
        self, agent_id: int, query: str, limit: int = 10
    ) -> list[Passage]: ...

    async def all_passages(self, agent_id: int) -> list[Passage]: ...


class OpsStore(Protocol):
    async def record_startup(self, run: StartupRun) -> None: ...

    async def recent_startups(self, limit: int) -> list[StartupRun]: ...

    async def record_llm_call(self, call: LLMCallRecord) -> None: ...

    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def recent_audit(self, limit: int) -> list[AuditEntry]: ...

    async def stats(self, since: datetime) -> StoreStats: ...

    async def backup(self, destination: Path) -> None:
        """A consistent copy of everything, taken while the bot runs; ``StorageError`` if this
        backend cannot make one."""
        ...


class ConsolidationStore(Protocol):
    async def unconsolidated(self, last_before: datetime, limit: int) -> list[Unconsolidated]:
        """People whose latest message was written before ``last_before`` and who have
        messages no consolidation has read, longest waiting first."""
        ...

    async def record_consolidation(self, run: ConsolidationRun) -> bool:
        """In one transaction, if no other consolidation read these messages and every edited
        block is still at the edit's version: store the edits as block versions by
        ``Actor.CONSOLIDATION``, the notes as archival passages and the run, and mark the
        messages up to ``through_id`` read. False, changing nothing, otherwise."""
        ...

    async def consolidation_tokens_since(self, since: datetime) -> int:
        """Tokens (prompt and completion) consolidation used since ``since``, across everyone."""
        ...


class Storage(
    AgentStore,
    BlockStore,
    MessageStore,
    InboxStore,
    PassageStore,
    OpsStore,
    ConsolidationStore,
    Protocol,
):
    """Everything a backend provides."""

    async def close(self) -> None: ...
