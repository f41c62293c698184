"""Rows as records, by column name: shared by every backend (a ``sqlite3.Row``, an
``asyncpg.Record`` and a dict all read ``row["name"]``), with the column lists they select."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    LLMCallRecord,
    OpenTurn,
    Passage,
    PendingMessage,
    PersonUsage,
    SearchHit,
    SharedBlock,
    StartupRun,
    StoredFile,
    StoredMessage,
    TokensSpent,
    Unembedded,
    UsageDay,
    VectorKind,
)
from agentcore.schedule.model import (
    DueReminder,
    PersonPrefs,
    QuietHours,
    Reminder,
    ReminderCounts,
    ReminderKind,
    ReminderStatus,
)
from agentcore.types import AgentKey, ChatKind, FileKind, InboundMessage

log = logging.getLogger(__name__)

# An agent row with its current summary: FROM agents a LEFT JOIN summaries s.
AGENT_COLUMNS = """a.id, a.platform, a.user_id, a.display_name, a.created_at, a.last_user_at,
    a.session_count, a.message_count, a.passage_count, a.context_start_id,
    COALESCE(s.content, '') AS summary, a.pressure_warned, a.prefix_blocks"""
AGENT_FROM = "agents a LEFT JOIN summaries s ON s.id = a.summary_id"
MESSAGE_COLUMNS = "id, role, content, created_at, tool_calls, tool_call_id"
BLOCK_COLUMNS = "label, value, char_limit, description, read_only, version, updated_at"
SHARED_COLUMNS = "label, value, updated_at, updated_by"
PASSAGE_COLUMNS = "id, content, tags, created_at, source, page"
# Per kind of searchable row: its table, which of its rows are searchable (on PostgreSQL the
# condition of the search index), its vectors' table and their id column.
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
# A row of daily usage: FROM usage_days u.
USAGE_COLUMNS = """u.day, u.model, u.calls, u.prompt_tokens, u.cached_tokens, u.completion_tokens,
    u.estimated_calls"""
EVERYONE = 0  # the agent_id of everyone's daily usage
REMINDER_COLUMNS = "number, message, due_at, fire_at, created_at, chat, status, late, sent_at, note"
# A claimed reminder with its person: RETURNING from reminders, a correlated lookup of agents.
DUE_COLUMNS = """id, agent_id, kind, number, message, due_at, fire_at, created_at, chat, route,
    note, late, (SELECT platform FROM agents WHERE agents.id = agent_id) AS platform,
    (SELECT user_id FROM agents WHERE agents.id = agent_id) AS user_id"""
PREFS_COLUMNS = "p.timezone, p.quiet_hours, p.checkins"
# The operator's counts (``reminder_counts``); the first placeholder is "sent since".
COUNTS_SELECT = """SELECT
    (SELECT count(*) FROM reminders WHERE status = 'pending') AS pending,
    (SELECT count(*) FROM reminders WHERE status = 'sent' AND sent_at >= {since}) AS sent_today,
    (SELECT count(*) FROM reminders WHERE late AND status = 'sent') AS late,
    (SELECT count(*) FROM reminders WHERE status = 'failed') AS failed,
    (SELECT count(*) FROM agent_prefs WHERE timezone IS NOT NULL) AS people_with_zone"""
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
        prefix_blocks=r["prefix_blocks"],
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


def open_turn(r: Row) -> OpenTurn:
    """A turn left open: the latest message it took up (``pending`` columns) and its reply."""
    return OpenTurn(pending(r).message, r["reply"])


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


def usage_day(r: Row) -> UsageDay:
    day = r["day"]  # a date (PostgreSQL) or its ISO text (SQLite)
    return UsageDay(
        day=day if isinstance(day, date) else date.fromisoformat(day),
        model=r["model"],
        calls=r["calls"],
        prompt_tokens=r["prompt_tokens"],
        cached_tokens=r["cached_tokens"],
        completion_tokens=r["completion_tokens"],
        estimated_calls=r["estimated_calls"],
    )


def counted_day(call: LLMCallRecord) -> date:
    """The day a call counts toward in the daily totals (``LLMCallRecord.day``)."""
    return call.day or call.created_at.astimezone(UTC).date()


def tokens_spent(found: Iterable[Row], agent_id: int | None) -> TokensSpent:
    """``UsageStore.tokens_spent`` from a day's rows of agent_id and tokens: ``agent_id``'s
    (0 for None) and everyone's."""
    spent = {r["agent_id"]: int(r["tokens"]) for r in found}
    return TokensSpent(spent.get(agent_id, 0), spent.get(EVERYONE, 0))


def person_usage(found: Iterable[Row]) -> list[PersonUsage]:
    """Daily usage rows of several people (each with its agent_id, platform, user_id and
    display_name), grouped by person in the order they come."""
    grouped: dict[int, tuple[Row, list[UsageDay]]] = {}
    for r in found:
        grouped.setdefault(r["agent_id"], (r, []))[1].append(usage_day(r))
    return [
        PersonUsage(AgentKey(first["platform"], first["user_id"]), first["display_name"], (*days,))
        for first, days in grouped.values()
    ]


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


def reminder(r: Row) -> Reminder:
    return Reminder(
        number=r["number"],
        message=r["message"],
        due_at=from_millis(r["due_at"]),
        fire_at=from_millis(r["fire_at"]),
        created_at=from_millis(r["created_at"]),
        chat=ChatKind(r["chat"]),
        status=ReminderStatus(r["status"]),
        late=bool(r["late"]),
        sent_at=maybe_time(r["sent_at"]),
        note=r["note"],
    )


def due_reminder(r: Row) -> DueReminder:
    """A row of ``DUE_COLUMNS``: a reminder as a claim took it."""
    return DueReminder(
        id=r["id"],
        agent_id=r["agent_id"],
        key=AgentKey(r["platform"], r["user_id"]),
        kind=ReminderKind(r["kind"]),
        number=r["number"],
        message=r["message"],
        due_at=from_millis(r["due_at"]),
        fire_at=from_millis(r["fire_at"]),
        created_at=from_millis(r["created_at"]),
        chat=ChatKind(r["chat"]),
        route=r["route"],
        note=r["note"],
        late=bool(r["late"]),
    )


def prefs(r: Row | None) -> PersonPrefs:
    """A row of ``PREFS_COLUMNS``; the defaults if the person never set any. A value this
    program cannot read (a zone unknown to this system's tz database) falls back to the
    default, with a warning for the operator."""
    if r is None:
        return PersonPrefs()
    quiet = r["quiet_hours"]
    return PersonPrefs(
        timezone=_zone(r["timezone"]),
        quiet_hours=_quiet(quiet),
        quiet_set=quiet is not None,
        checkins=bool(r["checkins"]),
    )


def prefs_values(p: PersonPrefs) -> tuple[str | None, str | None, bool]:
    """How ``p`` is stored: zone name (NULL: default), quiet hours (NULL: the operator's
    default; '': none), check-ins."""
    quiet = (str(p.quiet_hours) if p.quiet_hours else "") if p.quiet_set else None
    return (p.timezone.key if p.timezone else None, quiet, p.checkins)


def reminder_counts(r: Row) -> ReminderCounts:
    return ReminderCounts(
        pending=int(r["pending"]),
        sent_today=int(r["sent_today"]),
        late=int(r["late"]),
        failed=int(r["failed"]),
        people_with_zone=int(r["people_with_zone"]),
    )


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("stored time zone %r is unknown here; using the default", name)
        return None


def _quiet(text: str | None) -> QuietHours | None:
    try:
        return QuietHours.parse(text or "")
    except ValueError:
        log.warning("stored quiet hours %r are not valid; ignoring them", text)
        return None


def unembedded(r: Row) -> Unembedded:
    return Unembedded(r["id"], r["agent_id"], r["content"] or "")


def progress(r: Row) -> EmbeddingProgress:
    return EmbeddingProgress(
        r["name"], r["messages"], r["messages_embedded"], r["passages"], r["passages_embedded"]
    )
