"""The storage seam: small Protocols, one per concern, and the one error they raise.

``Storage`` is the union every backend implements; the rest of the core depends on the
narrowest protocol it needs. The records they pass are in ``agentcore.records``. Every backend
runs the same contract suite (tests/contract/).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
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
    OpenTurn,
    Passage,
    PendingFile,
    PendingMessage,
    PersonUsage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StoredFile,
    StoredMessage,
    StoreStats,
    TokensSpent,
    TurnState,
    Unconsolidated,
    Unembedded,
    UsageDay,
    UserActivity,
    VectorKind,
)
from agentcore.schedule.model import (
    DeliveryScope,
    DueReminder,
    NewReminder,
    PersonPrefs,
    Reminder,
    ReminderCounts,
    ReminderStatus,
)
from agentcore.search.meaning import QueryEmbedder
from agentcore.types import AgentKey, FileKind, InboundMessage


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

    async def set_prefix_blocks(self, agent_id: int, prefix_blocks: str) -> None:
        """Keep how the prompt's stable prefix shows core memory (``AgentRecord.prefix_blocks``,
        opaque to the store)."""
        ...

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
        document is gone (deleted, or its person forgotten); True, storing nothing, if
        ``pages_read`` pages are read already (another process read them too)."""
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


class UsageStore(Protocol):
    """Model usage, added up per day and model by the store as ``record_llm_call`` records each
    successful call: for the person it served and for everyone. Erasing a person erases their
    totals; everyone's keep the tokens (they name no one)."""

    async def usage(self, agent_id: int | None, since: date) -> list[UsageDay]:
        """Daily totals per model from ``since`` on, oldest first: one agent's, or with None
        everyone's."""
        ...

    async def tokens_spent(self, agent_id: int | None, day: date) -> TokensSpent:
        """Tokens counted toward ``day``: this agent's (0 for None), and everyone's together."""
        ...

    async def usage_by_person(self, since: date, limit: int) -> list[PersonUsage]:
        """The ``limit`` people who used the most tokens since ``since``, most first, each with
        their daily totals."""
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


class ReminderStore(Protocol):
    """Reminders (and check-ins) the agent sends on its own, and each person's settings for
    them. Claims are atomic: each due reminder is claimed by one caller, across processes."""

    async def add_reminder(self, new: NewReminder, max_pending: int) -> int | None:
        """Store a pending reminder and return its number for this person (1, 2, ...); None,
        storing nothing, if the person has ``max_pending`` pending already (checked in the
        same statement, so a burst cannot overshoot)."""
        ...

    async def list_reminders(self, agent_id: int, *, pending_only: bool) -> list[Reminder]:
        """The person's reminders (not check-ins), by due time; waiting ones only, or all."""
        ...

    async def cancel_reminder(self, agent_id: int, number: int) -> bool:
        """Cancel the person's pending reminder ``number``; False if there is none pending."""
        ...

    async def next_fire_at(
        self, scopes: Sequence[DeliveryScope], lease: timedelta
    ) -> datetime | None:
        """When the earliest pending reminder within ``scopes`` is due, or a claim on one
        runs out (its process died); None if there is nothing."""
        ...

    async def claim_due(
        self,
        now: datetime,
        scopes: Sequence[DeliveryScope],
        limit: int,
        lease: timedelta,
        late_after: timedelta,
    ) -> list[DueReminder]:
        """Atomically claim up to ``limit`` reminders due by ``now`` within ``scopes`` (and
        claims older than ``lease``, left by a process that died), earliest first, so no other
        process can take them. One claimed more than ``late_after`` after its time is marked
        late."""
        ...

    async def postpone_reminder(self, reminder_id: int, fire_at: datetime, note: str) -> None:
        """Give a claimed reminder back, to go out at ``fire_at`` (quiet hours, daily cap)."""
        ...

    async def finish_reminder(
        self, reminder_id: int, status: ReminderStatus, now: datetime, note: str = ""
    ) -> None:
        """Record how a claimed reminder ended (sent, skipped or failed)."""
        ...

    async def sent_since(self, agent_id: int, since: datetime) -> list[datetime]:
        """When unprompted messages (reminders, check-ins) were sent to this person since
        ``since``, oldest first."""
        ...

    async def add_checkins(
        self,
        now: datetime,
        silent_from: datetime,
        silent_to: datetime,
        scopes: Sequence[DeliveryScope],
    ) -> int:
        """A check-in, due now, for each person within ``scopes`` whose last message was
        between ``silent_from`` and ``silent_to`` and who has not turned check-ins off; at most
        one per silence (a person who wrote again starts a new one). Returns how many."""
        ...

    async def next_silence(
        self, after: datetime, scopes: Sequence[DeliveryScope]
    ) -> datetime | None:
        """The earliest last message after ``after`` of a person who has not turned check-ins
        off (their silence is the next to grow long enough for a check-in)."""
        ...

    async def load_prefs(self, key: AgentKey) -> PersonPrefs: ...

    async def save_prefs(self, agent_id: int, prefs: PersonPrefs) -> None: ...

    async def reminder_counts(self, since: datetime) -> ReminderCounts: ...


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
    ReminderStore,
    UsageStore,
    ConsolidationStore,
    VectorStore,
    Protocol,
):
    """Everything a turn, a command or a consolidation may read and write."""


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
        """Book the next moment at least ``interval`` seconds after the one the last
        ``pace(name)`` booked in any process on this database (or now, if that is later), and
        return once it has come (e.g. Discord's one IDENTIFY per 5 s)."""
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
