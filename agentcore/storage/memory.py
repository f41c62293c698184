"""An in-process ``Storage`` backed by dicts: for tests and for running without a file.

It honours the same contract as the SQLite backend (tests/contract/ runs against both). Its search
runs the same analyser and ranker (``agentcore.search``) over every message of the person, where
SQLite asks its full-text index for candidates first, so results can differ only in the tail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from agentcore.clock import to_millis
from agentcore.messages import Role
from agentcore.search.fuzzy import corrections
from agentcore.search.plan import (
    PASSAGE_WEIGHTS,
    count_keys,
    misspelt,
    rank_query,
    without_idle_prefixes,
)
from agentcore.search.query import SearchQuery, parse_query
from agentcore.search.rank import Candidate, Stats, Weights, rank
from agentcore.storage.base import (
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
    Passage,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    Storage,
    StorageError,
    StoredMessage,
    StoreStats,
    TurnState,
    UserActivity,
    message_terms,
    passage_terms,
)
from agentcore.types import AgentKey, InboundMessage


@dataclass
class _AgentData:
    record: AgentRecord
    blocks: dict[str, Block] = field(default_factory=dict)
    history: dict[str, list[BlockVersion]] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    # The searchable messages, as the ranker sees them, with the message itself.
    indexed: list[tuple[Candidate, StoredMessage]] = field(default_factory=list)
    passage_index: list[tuple[Candidate, Passage]] = field(default_factory=list)


class MemoryStorage:
    def __init__(self) -> None:
        self._agents: dict[AgentKey, _AgentData] = {}
        self._by_id: dict[int, _AgentData] = {}
        self._ids = itertools.count(1)  # one sequence for all rows, like SQLite rowids here
        self._shared: dict[str, SharedBlock] = {}
        self._startups: list[StartupRun] = []
        self._calls: list[LLMCallRecord] = []
        self._audit: list[AuditEntry] = []
        self._inbox: dict[int, PendingMessage] = {}  # waiting messages only
        # (platform, source) of messages already answered -> when they arrived
        self._answered_sources: dict[tuple[str, str], datetime] = {}

    async def close(self) -> None:
        return None

    # ----------------------------------------------------------------- agents

    async def load_agent(self, key: AgentKey) -> AgentRecord | None:
        data = self._agents.get(key)
        return data.record if data else None

    async def load_turn(self, key: AgentKey) -> TurnState | None:
        data = self._agents.get(key)
        if data is None:
            return None
        context = [m for m in data.messages if m.id >= data.record.context_start_id]
        return TurnState(
            data.record, list(data.blocks.values()), await self.list_shared_blocks(), context
        )

    async def create_agent(
        self, key: AgentKey, display_name: str, now: datetime, blocks: Sequence[BlockSpec]
    ) -> AgentRecord | None:
        if key in self._agents:
            return None
        record = AgentRecord.fresh(next(self._ids), key, display_name, now)
        data = _AgentData(record)
        for spec in blocks:
            data.blocks[spec.label] = spec.block(now)
            data.history[spec.label] = []
        self._agents[key] = data
        self._by_id[record.id] = data
        return record

    def _update(self, agent_id: int, **changes: object) -> None:
        data = self._by_id[agent_id]
        data.record = replace(data.record, **changes)  # type: ignore[arg-type]

    async def set_pressure_warned(self, agent_id: int, warned: bool) -> None:
        self._update(agent_id, pressure_warned=warned)

    async def fold_context(
        self, agent_id: int, summary: str, context_start_id: int, now: datetime
    ) -> None:
        self._update(
            agent_id, summary=summary, context_start_id=context_start_id, pressure_warned=False
        )

    async def reset_context(self, agent_id: int, now: datetime) -> None:
        self._update(agent_id, summary="", context_start_id=next(self._ids), pressure_warned=False)

    async def list_agents(self, limit: int) -> list[AgentSummary]:
        def recency(d: _AgentData) -> tuple[bool, float, int]:
            seen = d.record.last_user_at
            return (seen is None, -(seen.timestamp() if seen else 0.0), -d.record.id)

        ordered = sorted(self._agents.values(), key=recency)[:limit]
        return [
            AgentSummary(
                d.record.key,
                d.record.display_name,
                d.record.last_user_at,
                d.record.message_count,
                sum(len(b.value) for b in d.blocks.values()),
            )
            for d in ordered
        ]

    async def delete_agent(self, agent_id: int) -> None:
        self._forget(agent_id, redact_audit=True)

    def _forget(self, agent_id: int, *, redact_audit: bool) -> None:
        data = self._by_id.pop(agent_id, None)
        if data is None:
            return
        key = data.record.key
        del self._agents[key]
        self._inbox = {i: p for i, p in self._inbox.items() if p.message.key != key}
        self._calls = [c for c in self._calls if c.agent_id != agent_id]
        if redact_audit:
            erased = f"{key.platform}:(erased)"
            self._audit = [
                replace(e, target=erased) if e.target == str(key) else e for e in self._audit
            ]

    async def replace_agent(
        self, key: AgentKey, snapshot: AgentSnapshot, now: datetime
    ) -> AgentRecord:
        existing = self._agents.get(key)
        if existing is not None:
            self._forget(existing.record.id, redact_audit=False)
        created = await self.create_agent(key, snapshot.display_name, now, snapshot.blocks)
        assert created is not None
        ids = await self.append_messages(created.id, snapshot.messages) if snapshot.messages else []
        for p in snapshot.passages:
            await self.add_passage(created.id, p.content, p.tags, p.created_at)
        in_context = ids[len(ids) - snapshot.in_context :] if snapshot.in_context else []
        users = [m.created_at for m in snapshot.messages if m.role is Role.USER]
        self._update(
            created.id,
            context_start_id=in_context[0] if in_context else next(self._ids),
            summary=snapshot.summary,
            last_user_at=users[-1] if users else None,
            session_count=1 if users else 0,
        )
        return self._by_id[created.id].record

    # ----------------------------------------------------------------- blocks

    async def list_blocks(self, agent_id: int) -> list[Block]:
        return list(self._by_id[agent_id].blocks.values())

    async def save_block(
        self, agent_id: int, label: str, value: str, actor: Actor, actor_name: str, now: datetime
    ) -> Block:
        data = self._by_id[agent_id]
        old = data.blocks[label]  # KeyError for an unknown label, as the contract says
        new = replace(old, value=value, version=old.version + 1, updated_at=now)
        data.blocks[label] = new
        data.history[label].append(
            BlockVersion(new.version, actor, actor_name, old.value, value, now)
        )
        return new

    async def block_history(self, agent_id: int, label: str) -> list[BlockVersion]:
        data = self._by_id.get(agent_id)
        return list(data.history.get(label, [])) if data else []

    async def list_shared_blocks(self) -> list[SharedBlock]:
        return [self._shared[label] for label in sorted(self._shared)]

    async def set_shared_block(self, label: str, value: str, by: str, now: datetime) -> None:
        self._shared[label] = SharedBlock(label, value, now, by)

    async def delete_shared_block(self, label: str) -> bool:
        return self._shared.pop(label, None) is not None

    # ----------------------------------------------------------------- messages

    async def append_messages(
        self,
        agent_id: int,
        messages: Sequence[NewMessage],
        activity: UserActivity | None = None,
    ) -> list[int]:
        data = self._by_id[agent_id]
        ids = []
        for m in messages:
            stored = StoredMessage(
                next(self._ids), m.role, m.content, m.created_at, m.tool_calls, m.tool_call_id
            )
            data.messages.append(stored)
            ids.append(stored.id)
            terms = message_terms(m.role, m.content)
            if terms is not None:
                seq, at = len(data.indexed), to_millis(m.created_at)
                data.indexed.append((Candidate(stored.id, seq, at, terms), stored))
        changes: dict[str, object] = {"message_count": data.record.message_count + len(ids)}
        if activity is not None:
            changes |= {
                "last_user_at": activity.sent_at,
                "session_count": activity.session_count,
                "display_name": activity.display_name,
            }
        self._update(agent_id, **changes)
        return ids

    async def context_messages(self, agent_id: int, since_id: int) -> list[StoredMessage]:
        return [m for m in self._by_id[agent_id].messages if m.id >= since_id]

    async def recent_matches(self, agent_id: int, query: str, limit: int) -> list[SearchHit]:
        wanted = set(parse_query(query).terms)
        matching = [
            m for c, m in reversed(self._by_id[agent_id].indexed) if wanted & set(c.terms.split())
        ]
        return [SearchHit(m.id, m.role, m.content or "", m.created_at) for m in matching[:limit]]

    async def all_messages(self, agent_id: int) -> list[StoredMessage]:
        return list(self._by_id[agent_id].messages)

    async def search_messages(
        self,
        agent_id: int,
        query: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        indexed = self._by_id[agent_id].indexed
        in_range = [
            (c, m)
            for c, m in indexed
            if (start is None or m.created_at >= start) and (end is None or m.created_at <= end)
        ]
        parsed = parse_query(query)
        if parsed.empty:
            if start is None and end is None:
                return []
            newest = sorted(in_range, key=lambda cm: -cm[0].id)[:limit]
            return [SearchHit(m.id, m.role, m.content or "", m.created_at) for _, m in newest]
        found = _ranked(parsed, [c for c, _ in indexed], [c for c, _ in in_range])
        by_id = {c.id: m for c, m in in_range}
        return [
            SearchHit(c.id, by_id[c.id].role, by_id[c.id].content or "", by_id[c.id].created_at, s)
            for c, s in found[:limit]
        ]

    # ----------------------------------------------------------------- inbox

    async def add_pending(self, message: InboundMessage, received_at: datetime) -> int | None:
        if message.source and self._seen(message.key.platform, message.source):
            return None
        pending = PendingMessage(next(self._ids), message, received_at)
        self._inbox[pending.id] = pending
        return pending.id

    def _seen(self, platform: str, source: str) -> bool:
        if (platform, source) in self._answered_sources:
            return True
        return any(
            p.message.key.platform == platform and p.message.source == source
            for p in self._inbox.values()
        )

    async def claim_pending(
        self, key: AgentKey, up_to_id: int, agent_id: int, activity: UserActivity
    ) -> list[StoredMessage]:
        mine = sorted(
            (p for p in self._inbox.values() if p.message.key == key and p.id <= up_to_id),
            key=lambda p: p.id,
        )
        if not mine:
            return []
        for pending in mine:
            del self._inbox[pending.id]
            if pending.message.source:
                source = (key.platform, pending.message.source)
                self._answered_sources[source] = pending.received_at
        messages = [NewMessage(Role.USER, p.message.text, p.message.sent_at) for p in mine]
        ids = await self.append_messages(agent_id, messages, activity)
        return [
            StoredMessage(i, Role.USER, m.content, m.created_at)
            for i, m in zip(ids, messages, strict=True)
        ]

    async def start_agent(
        self,
        key: AgentKey,
        up_to_id: int,
        agent: NewAgent,
        activity: UserActivity,
    ) -> tuple[AgentRecord, list[StoredMessage]] | None:
        record = await self.create_agent(key, agent.display_name, agent.created_at, agent.blocks)
        if record is None:
            return None
        return record, await self.claim_pending(key, up_to_id, record.id, activity)

    async def count_pending(self, key: AgentKey) -> int:
        return sum(1 for p in self._inbox.values() if p.message.key == key)

    async def prune_inbox(self, before: datetime) -> int:
        old = [source for source, when in self._answered_sources.items() if when < before]
        for source in old:
            del self._answered_sources[source]
        return len(old)

    async def list_pending(self, platform: str | None = None) -> list[PendingMessage]:
        return [
            p
            for p in self._inbox.values()
            if platform is None or p.message.key.platform == platform
        ]

    # ----------------------------------------------------------------- passages

    async def add_passage(
        self, agent_id: int, content: str, tags: Sequence[str], now: datetime
    ) -> int:
        data = self._by_id[agent_id]
        passage = Passage(next(self._ids), content, tuple(tags), now)
        data.passages.append(passage)
        terms = passage_terms(content, tags)
        data.passage_index.append(
            (Candidate(passage.id, passage.id, to_millis(now), terms), passage)
        )
        self._update(agent_id, passage_count=data.record.passage_count + 1)
        return passage.id

    async def search_passages(self, agent_id: int, query: str, limit: int = 10) -> list[Passage]:
        parsed = parse_query(query)
        if parsed.empty:
            return []
        parsed = SearchQuery(parsed.terms, parsed.names, ())  # filing date is not event date
        index = self._by_id[agent_id].passage_index
        candidates = [c for c, _ in index]
        found = _ranked(parsed, candidates, candidates, PASSAGE_WEIGHTS)
        by_id = {c.id: p for c, p in index}
        return [replace(by_id[c.id], score=score) for c, score in found[:limit]]

    async def all_passages(self, agent_id: int) -> list[Passage]:
        return list(self._by_id[agent_id].passages)

    # ----------------------------------------------------------------- operations

    async def record_startup(self, run: StartupRun) -> None:
        self._startups.append(replace(run, id=len(self._startups) + 1))

    async def recent_startups(self, limit: int) -> list[StartupRun]:
        return list(reversed(self._startups))[:limit]

    async def record_llm_call(self, call: LLMCallRecord) -> None:
        self._calls.append(call)

    async def add_audit(self, entry: AuditEntry) -> None:
        self._audit.append(replace(entry, id=len(self._audit) + 1))

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        return list(reversed(self._audit))[:limit]

    async def backup(self, destination: Path) -> None:
        raise StorageError("the in-memory store keeps nothing on disk to back up")

    async def stats(self, since: datetime) -> StoreStats:
        calls = [c for c in self._calls if c.created_at >= since]
        records = [d.record for d in self._agents.values()]
        return StoreStats(
            agents=len(records),
            messages=sum(r.message_count for r in records),
            passages=sum(r.passage_count for r in records),
            size_bytes=0,
            llm_calls_today=len(calls),
            tokens_today=sum(c.prompt_tokens + c.completion_tokens for c in calls),
            llm_latencies_ms=tuple(c.latency_ms for c in calls),
        )


def _ranked(
    query: SearchQuery,
    history: Sequence[Candidate],
    candidates: Sequence[Candidate],
    weights: Weights | None = None,
) -> list[tuple[Candidate, float]]:
    """Rank ``candidates`` with statistics (and spelling fixes) from the whole ``history``."""
    plan = rank_query(query)
    df = count_keys(plan, (c.terms for c in history))
    unknown = misspelt(query, df)
    if unknown:
        vocabulary = _vocabulary(history)
        fixes = {t: corrections(t, vocabulary)[:3] for t in unknown}
        plan = rank_query(query, {t: near for t, near in fixes.items() if near})
        df = count_keys(plan, (c.terms for c in history))
    plan = without_idle_prefixes(plan, df)
    avg_len = sum(c.length for c in history) / max(len(history), 1)
    stats = Stats(len(history), avg_len, df)
    return rank(plan, candidates, stats, weights or Weights())


def _vocabulary(history: Iterable[Candidate]) -> set[str]:
    return {t for c in history for t in c.terms.split()}


def _conforms(store: MemoryStorage) -> Storage:  # mypy checks the backend against the protocol
    return store
