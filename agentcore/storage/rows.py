"""Rows as records, by column name: shared by every backend (a ``sqlite3.Row``, an
``asyncpg.Record`` and a dict all read ``row["name"]``), with the column lists they select."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from agentcore.clock import from_millis, to_millis
from agentcore.messages import Role, ToolCall
from agentcore.records import (
    Actor,
    AgentRecord,
    AgentSummary,
    AuditEntry,
    Block,
    BlockVersion,
    DocState,
    EmbeddingProgress,
    Passage,
    PendingMessage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StoredFile,
    StoredMessage,
    Unembedded,
    VectorKind,
)
from agentcore.types import AgentKey, ChatKind, FileKind, InboundMessage

# An agent row with its current summary: FROM agents a LEFT JOIN summaries s.
AGENT_COLUMNS = """a.id, a.platform, a.user_id, a.display_name, a.created_at, a.last_user_at,
    a.session_count, a.message_count, a.passage_count, a.context_start_id,
    COALESCE(s.content, '') AS summary, a.pressure_warned"""
AGENT_FROM = "agents a LEFT JOIN summaries s ON s.id = a.summary_id"
MESSAGE_COLUMNS = "id, role, content, created_at, tool_calls, tool_call_id"
BLOCK_COLUMNS = "label, value, char_limit, description, read_only, version, updated_at"
SHARED_COLUMNS = "label, value, updated_at, updated_by"
PASSAGE_COLUMNS = "id, content, tags, created_at, source, page"
# Per kind of vector: the rows' table, which of its rows are searchable, the vectors' table and
# its id column.
VECTOR_TABLES = {
    VectorKind.MESSAGE: ("messages", "terms IS NOT NULL", "message_vectors", "message_id"),
    VectorKind.PASSAGE: ("passages", "TRUE", "passage_vectors", "passage_id"),
}
# Each model's progress: FROM embedding_models m, with the searchable rows' totals as t.
PROGRESS_COLUMNS = """m.name, t.messages, t.passages,
    (SELECT count(*) FROM message_vectors v WHERE v.model_id = m.id) AS messages_embedded,
    (SELECT count(*) FROM passage_vectors v WHERE v.model_id = m.id) AS passages_embedded"""
PROGRESS_TOTALS = """(SELECT coalesce(sum(search_docs), 0) AS messages,
    coalesce(sum(passage_count), 0) AS passages FROM agents) t"""
PENDING_COLUMNS = """id, platform, user_id, display_name, chat, text, sent_at, route, received_at,
    COALESCE(source, '') AS source"""
HISTORY_COLUMNS = "h.version, h.actor, h.actor_name, h.old_value, h.new_value, h.created_at"
HIT_COLUMNS = "id, role, content, created_at"
# A file row without its bytes (``data`` is selected only where it is needed).
FILE_COLUMNS = (
    "id, kind, filename, mime_type, size, created_at, note, state, pages, pages_read, message_id"
)


class Row(Protocol):
    def __getitem__(self, column: str) -> Any: ...


def maybe_time(ms: int | None) -> datetime | None:
    return None if ms is None else from_millis(ms)


def maybe_millis(at: datetime | None) -> int | None:
    return None if at is None else to_millis(at)


def agent(r: Row) -> AgentRecord:
    return AgentRecord(
        id=r["id"],
        key=AgentKey(r["platform"], r["user_id"]),
        display_name=r["display_name"],
        created_at=from_millis(r["created_at"]),
        last_user_at=maybe_time(r["last_user_at"]),
        session_count=r["session_count"],
        message_count=r["message_count"],
        passage_count=r["passage_count"],
        context_start_id=r["context_start_id"],
        summary=r["summary"],
        pressure_warned=bool(r["pressure_warned"]),
    )


def block(r: Row) -> Block:
    return Block(
        label=r["label"],
        value=r["value"],
        limit=r["char_limit"],
        description=r["description"],
        read_only=bool(r["read_only"]),
        version=r["version"],
        updated_at=from_millis(r["updated_at"]),
    )


def shared_block(r: Row) -> SharedBlock:
    return SharedBlock(r["label"], r["value"], from_millis(r["updated_at"]), r["updated_by"])


def message(r: Row) -> StoredMessage:
    return StoredMessage(
        id=r["id"],
        role=Role(r["role"]),
        content=r["content"],
        created_at=from_millis(r["created_at"]),
        tool_calls=load_calls(r["tool_calls"]),
        tool_call_id=r["tool_call_id"],
    )


def hit(r: Row, score: float = 0.0) -> SearchHit:
    return SearchHit(r["id"], Role(r["role"]), r["content"], from_millis(r["created_at"]), score)


def passage(r: Row, score: float = 0.0) -> Passage:
    return Passage(
        r["id"],
        r["content"],
        tuple(r["tags"].split()),
        from_millis(r["created_at"]),
        score,
        r["source"],
        r["page"],
    )


def dump_calls(calls: Iterable[ToolCall]) -> str | None:
    payload = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return json.dumps(payload) if payload else None


def load_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in json.loads(text))


def claimed(r: Row) -> StoredMessage:
    """A person's message as a turn took it up from the inbox."""
    return StoredMessage(r["id"], Role.USER, r["content"], from_millis(r["created_at"]))


def pending(r: Row) -> PendingMessage:
    message = InboundMessage(
        key=AgentKey(r["platform"], r["user_id"]),
        text=r["text"],
        sent_at=from_millis(r["sent_at"]),
        display_name=r["display_name"],
        chat=ChatKind(r["chat"]),
        route=r["route"],
        source=r["source"],
    )
    return PendingMessage(r["id"], message, from_millis(r["received_at"]))


def block_version(r: Row) -> BlockVersion:
    return BlockVersion(
        version=r["version"],
        actor=Actor(r["actor"]),
        actor_name=r["actor_name"],
        old_value=r["old_value"],
        new_value=r["new_value"],
        created_at=from_millis(r["created_at"]),
    )


def agent_summary(r: Row) -> AgentSummary:
    """A row of ``list_agents``: an agent row with its core memory's size."""
    return AgentSummary(
        key=AgentKey(r["platform"], r["user_id"]),
        display_name=r["display_name"],
        last_user_at=maybe_time(r["last_user_at"]),
        message_count=r["message_count"],
        core_memory_chars=r["core_memory_chars"],
    )


def startup_run(r: Row) -> StartupRun:
    return StartupRun(
        started_at=from_millis(r["started_at"]),
        total_ms=r["total_ms"],
        rss_mb=r["rss_mb"],
        phases=tuple((name, float(ms)) for name, ms in json.loads(r["phases"])),
        id=r["id"],
    )


def audit_entry(r: Row) -> AuditEntry:
    return AuditEntry(
        actor=r["actor"],
        verb=r["verb"],
        target=r["target"],
        created_at=from_millis(r["created_at"]),
        detail=r["detail"],
        id=r["id"],
    )


def stored_file(r: Row, *, with_data: bool = False) -> StoredFile:
    return StoredFile(
        id=r["id"],
        kind=FileKind(r["kind"]),
        filename=r["filename"],
        mime_type=r["mime_type"],
        size=r["size"],
        created_at=from_millis(r["created_at"]),
        note=r["note"],
        state=DocState(r["state"]),
        pages=r["pages"],
        pages_read=r["pages_read"],
        message_id=r["message_id"],
        data=bytes(r["data"]) if with_data else b"",
    )


def unembedded(r: Row) -> Unembedded:
    return Unembedded(r["id"], r["agent_id"], r["content"] or "")


def progress(r: Row) -> EmbeddingProgress:
    return EmbeddingProgress(
        r["name"], r["messages"], r["messages_embedded"], r["passages"], r["passages_embedded"]
    )
