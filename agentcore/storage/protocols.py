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
    ConsolidationRun,
    DocState,
    DocumentPassage,
    EmbeddingModel,
    EmbeddingProgress,
    FileUpdate,
    LLMCallRecord,
    NewAgent,
    NewMessage,
    NewVector,
    Passage,
    PendingFile,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StoredFile,
    StoredMessage,
    StoreStats,
    TurnState,
    Unconsolidated,
    Unembedded,
    UserActivity,
    VectorKind,
)
from agentcore.search.meaning import QueryEmbedder
from agentcore.types import AgentKey, FileKind, InboundMessage


class StorageError(Exception):
    """The store could not complete an operation (locked, full, read-only, corrupt)."""


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
        fuzzy: bool = True,
    ) -> list[SearchHit]:
        """Full-text search over this agent's user and assistant messages, best first.

        ``start``/``end`` bound ``created_at`` (inclusive). Any query text is safe. ``fuzzy``:
        query words nobody ever wrote are also looked for as the real words they may be
        misspellings of (``search.engine``).
        """
        ...

    async def recent_matches(self, agent_id: int, query: str, limit: int) -> list[SearchHit]:
        """This agent's user and assistant messages matching ``query``, newest first."""
        ...

    async def all_messages(self, agent_id: int) -> list[StoredMessage]: ...


class InboxStore(Protocol):
    """Messages are stored on arrival and moved into recall memory when their turn starts."""

    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        """Store an arriving message with its files, in one transaction; None (storing
        nothing) if its ``source`` was stored before (a redelivery)."""
        ...

    async def prune_inbox(self, before: datetime) -> int:
        """Forget claimed messages received before ``before`` (their copies live in recall)."""
        ...

    async def claim_pending(
        self, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
    ) -> list[StoredMessage]:
        """In one transaction, move this person's pending messages with id <= ``up_to_id``
        into the agent's recall memory (as user messages, with their platform timestamps),
        oldest first, their files with them (``StoredFile.message_id``). Empty if none is
        left: an earlier turn answered them together."""
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
        self, agent_id: int, query: str, limit: int = 10, offset: int = 0, *, fuzzy: bool = True
    ) -> list[Passage]:
        """The best ``limit`` passages for ``query`` after the first ``offset`` (paging);
        ``fuzzy`` as for ``search_messages``."""
        ...

    async def all_passages(self, agent_id: int) -> list[Passage]: ...


class FileStore(Protocol):
    """Files people sent (photos, voice notes, documents), kept with their messages."""

    async def pending_files(self, key: AgentKey, up_to_id: int) -> list[PendingFile]:
        """This person's files not yet prepared, with their bytes, that came with waiting
        messages of id <= ``up_to_id``, oldest first."""
        ...

    async def prepare_pending(
        self, pending_id: int, text: str, updates: Sequence[FileUpdate]
    ) -> None:
        """In one transaction: the waiting message's text becomes ``text`` (its caption and
        what its files turned out to be), and each file gets its update and is prepared."""
        ...

    async def message_files(
        self, agent_id: int, message_ids: Sequence[int], kind: FileKind
    ) -> list[StoredFile]:
        """The files of ``kind`` that came with these messages of this agent, with bytes."""
        ...

    async def list_files(self, agent_id: int, state: DocState | None = None) -> list[StoredFile]:
        """This agent's files (only documents in ``state``, if given), oldest first, without
        bytes."""
        ...

    async def file_data(self, agent_id: int, file_id: int) -> bytes | None:
        """A file's bytes; None if this agent has no such file."""
        ...

    async def delete_file(self, agent_id: int, file_id: int) -> bool:
        """Erase the file and the passages read from it; False if there is none."""
        ...

    async def add_document_passages(
        self, agent_id: int, file_id: int, passages: Sequence[DocumentPassage], pages_read: int
    ) -> bool:
        """In one transaction, file passages read from a document (tagged with its name and
        page) and record how many of its pages are read. False, storing nothing, if the
        document is gone (deleted, or its person forgotten)."""
        ...

    async def finish_document(
        self, agent_id: int, file_id: int, state: DocState, note: str
    ) -> None: ...


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
        ``Actor.CONSOLIDATION`` (named by ``run.model``), the notes as archival passages and
        the run, and mark the messages up to ``through_id`` read. False, changing nothing,
        otherwise."""
        ...

    async def consolidation_tokens_since(self, since: datetime) -> int:
        """Tokens (prompt and completion) consolidation used since ``since``, across everyone."""
        ...


class VectorStore(Protocol):
    """Embeddings of messages and passages, for search by meaning (``search.meaning``)."""

    def search_by_meaning(self, embedder: QueryEmbedder | None) -> None:
        """Searches from now on rank in the rows nearest the query in meaning, as
        ``embedder`` embeds it (None: lexical only). Set once, by the composition root."""
        ...

    async def embedding_model(self, name: str) -> EmbeddingModel:
        """The model called ``name``, registered on first use."""
        ...

    async def set_embedding_dims(self, model_id: int, dims: int) -> int:
        """Record the model's dimension if none is recorded yet; the recorded one."""
        ...

    async def unembedded(
        self, kind: VectorKind, model_id: int, after_id: int, limit: int
    ) -> list[Unembedded]:
        """Searchable rows of ``kind`` with an id above ``after_id`` and no vector of
        ``model_id``, by id, at most ``limit`` (across everyone: the background worker's)."""
        ...

    async def store_vectors(
        self, kind: VectorKind, model_id: int, vectors: Sequence[NewVector]
    ) -> int:
        """Store (or replace) the rows' vectors; a vector whose row is gone (forgotten
        meanwhile) is not stored. How many were stored."""
        ...

    async def embedding_progress(self) -> list[EmbeddingProgress]:
        """For each model with vectors or registered, how many rows have one."""
        ...


class PersonStorage(
    AgentStore,
    BlockStore,
    MessageStore,
    InboxStore,
    PassageStore,
    FileStore,
    OpsStore,
    VectorStore,
    Protocol,
):
    """Everything a turn or a command may read and write."""


class Storage(PersonStorage, ConsolidationStore, Protocol):
    """Everything a backend provides."""

    def person(self, key: AgentKey) -> AbstractAsyncContextManager[PersonStorage]:
        """The store for one person's turn (or command), held for its span.

        With one process on the database (SQLite, kept single by the instance lock) this is
        the store itself. With several processes on one database (PostgreSQL) it holds the
        person's lock for the span and writes through the lock's own connection, so a process
        that lost the lock cannot write.
        """
        ...

    async def close(self) -> None: ...
