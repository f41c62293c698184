"""The storage seam: small Protocols, one per concern, and the one error they raise.

``Storage`` is the union every backend implements; the rest of the core depends on the
narrowest protocol it needs. The records they pass are in ``agentcore.records``. Every backend
runs the same contract suite (tests/contract/).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from agentcore.records import (
    Actor,
    AgentRecord,
    AgentSnapshot,
    AgentSummary,
    AuditEntry,
    Block,
    BlockSpec,
    BlockVersion,
    LLMCallRecord,
    NewAgent,
    NewMessage,
    OpenTurn,
    Passage,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StoredMessage,
    StoreStats,
    TurnState,
    UserActivity,
)
from agentcore.types import AgentKey, InboundMessage


class StorageError(Exception):
    """The store could not complete an operation (locked, full, read-only, corrupt)."""


class LockLost(StorageError):
    """A person's lock went with its database connection (dropped, or ended by the server
    because this process stalled): another process may be running their turn now, so nothing
    more may be written for it here."""


class PersonBusy(StorageError):
    """Another process holds the person's lock (``Storage.person(key, wait=False)``)."""


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

    async def store_reply(
        self, key: AgentKey, agent_id: int, messages: Sequence[NewMessage]
    ) -> list[int]:
        """Store a turn's last step (``messages``, the reply first) and record it as the reply
        to this person's messages the turn took up, in one transaction; the stored ids. A crash
        afterwards leaves the reply to be sent (``open_turn``), never the turn to run again."""
        ...

    async def open_turn(self, key: AgentKey) -> OpenTurn | None:
        """This person's turn that took up messages and was not finished (see
        ``finish_turn``); None if every turn of theirs finished."""
        ...

    async def finish_turn(self, key: AgentKey) -> None:
        """The messages this person's turns took up are answered: their reply went out (or
        they were told the turn failed)."""
        ...

    async def count_pending(self, key: AgentKey) -> int: ...

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        """Messages still waiting (e.g. after a crash), oldest first."""
        ...

    async def list_unfinished(self, platform: str) -> list[PendingMessage]:
        """For each person with an open turn (``open_turn``), the latest message it took up."""
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


class PersonStorage(
    AgentStore, BlockStore, MessageStore, InboxStore, PassageStore, OpsStore, Protocol
):
    """Everything a turn or a command may read and write."""


class Role(Protocol):
    """Something one process at a time holds among the processes on a database, such as
    "the Telegram poller" (see ``Storage.take_role``)."""

    async def alive(self) -> bool:
        """Whether it is still held, asking the database now."""
        ...

    async def lost(self) -> None:
        """Return once it is lost: its connection went (the database restarted, or this process
        stalled and the server ended its session, so another process may hold it now)."""
        ...

    async def release(self) -> None: ...


class Coordination(Protocol):
    """What bot processes sharing a database coordinate through."""

    async def take_role(self, name: str, *, wait: bool) -> Role | None:
        """Hold the role ``name`` until it is released or lost; if another process holds it,
        wait until it is free (``wait``) or return None."""
        ...

    async def pace(self, name: str, interval: float) -> None:
        """Return once at least ``interval`` seconds have passed since the last ``pace(name)``
        returned in any process on this database (e.g. Discord's one IDENTIFY per 5 s)."""
        ...


class Storage(PersonStorage, Coordination, Protocol):
    """Everything a backend provides."""

    @property
    def shared(self) -> bool:
        """Whether other bot processes may use this database at the same time (so a process
        that died may leave work for the others to finish)."""
        ...

    def person(
        self, key: AgentKey, *, wait: bool = True
    ) -> AbstractAsyncContextManager[PersonStorage]:
        """The store for one person's turn (or command), held for its span.

        With one process on the database (SQLite, kept single by the instance lock) this is
        the store itself. With several processes on one database (PostgreSQL) it holds the
        person's lock for the span (waiting for another process's turn of theirs to end, or,
        without ``wait``, raising ``PersonBusy``) and writes through the lock's own connection,
        so a process that lost the lock cannot write: ``LockLost``.
        """
        ...

    async def close(self) -> None: ...
