"""Letta Agent File (``.af``) export and import.

The layout is Letta's ``AgentFileSchema``: top-level ``agents``, ``blocks``, ``tools`` (and
empty ``groups``, ``files``, ``sources``, ``mcp_servers``), each agent holding ``block_ids``,
``messages`` (with ``created_at``) and ``in_context_message_ids``. Archival passages are not part
of Letta's schema; they travel under an extra top-level ``passages`` key (Letta ignores unknown
keys), and our block history, running summary and model usage under ``agentcore``. Files the
person sent are in Letta's ``files`` list (name, type, size, status, the description or
transcript as ``content``), each with its bytes as ``data_base64`` while the export stays within
``FILE_BUDGET`` (so it can still be sent as one attachment); the passages read from a document
carry its name and page.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from agentcore.memory.blocks import LABEL_RULE, valid_label
from agentcore.messages import Role, ToolCall
from agentcore.records import (
    AgentRecord,
    AgentSnapshot,
    Block,
    BlockSpec,
    BlockVersion,
    DocState,
    NewMessage,
    NewPassage,
    Passage,
    StoredFile,
    StoredMessage,
    UsageDay,
)
from agentcore.schedule.model import PersonPrefs, Reminder
from agentcore.types import clean_text

FORMAT = "agentcore-af-1"
_DEFAULT_LIMIT = 5000
_IMPORTED_ROLES = {Role.USER.value, Role.ASSISTANT.value, Role.TOOL.value}
_MAX_NAME = 128  # as the runtime caps display names
_MAX_DESCRIPTION = 1000
_MAX_TAG = 100
FILE_BUDGET = 6 * 2**20  # bytes of files an export carries (base64 adds a third; Discord: 10 MB)
_FILE_STATUS = {
    DocState.NONE: "completed",
    DocState.READY: "completed",
    DocState.READING: "parsing",
    DocState.FAILED: "error",
}


class AgentFileError(ValueError):
    """The file is not an Agent File we can import; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ExportData:
    agent: AgentRecord
    blocks: Sequence[Block]
    history: dict[str, list[BlockVersion]]
    messages: Sequence[StoredMessage]
    passages: Sequence[Passage]
    system: str
    model: str
    context_window: int
    reminders: Sequence[Reminder] = ()
    prefs: PersonPrefs = field(default_factory=PersonPrefs)
    files: Sequence[StoredFile] = ()  # with the bytes of those within FILE_BUDGET
    usage: Sequence[UsageDay] = ()  # model use for this person, per day and model


# --------------------------------------------------------------------- export


def export_agent_file(data: ExportData, now: datetime) -> dict[str, Any]:
    agent = data.agent
    block_ids = {b.label: f"block-{i}" for i, b in enumerate(data.blocks)}
    message_ids = {m.id: f"message-{i}" for i, m in enumerate(data.messages)}
    in_context = [message_ids[m.id] for m in data.messages if m.id >= agent.context_start_id]
    return {
        "agents": [
            {
                "id": "agent-0",
                "name": str(agent.key),
                "description": f"Memory agent of {agent.display_name or agent.key}",
                "agent_type": "memgpt_agent",
                "system": data.system,
                "block_ids": list(block_ids.values()),
                "tool_ids": [],
                "source_ids": [],
                "tags": [agent.key.platform],
                "metadata": {"agentcore_user": str(agent.key)},
                "llm_config": {
                    "model": data.model,
                    "model_endpoint_type": "openai",
                    "context_window": data.context_window,
                },
                "in_context_message_ids": in_context,
                "messages": [_export_message(m, message_ids[m.id]) for m in data.messages],
                "created_at": _iso(agent.created_at),
            }
        ],
        "groups": [],
        "blocks": [_export_block(b, block_ids[b.label]) for b in data.blocks],
        "files": [_export_file(f, i) for i, f in enumerate(data.files)],
        "sources": [],
        "tools": [],
        "mcp_servers": [],
        "metadata": {"exported_by": "agentcore", "format": FORMAT},
        "created_at": _iso(now),
        "passages": [_export_passage(p) for p in data.passages],
        "agentcore": {
            "user": str(agent.key),
            "display_name": agent.display_name,
            "summary": agent.summary,
            "block_history": {
                label: [_export_version(v) for v in versions]
                for label, versions in data.history.items()
            },
            "usage": [_export_usage(day) for day in data.usage],
            "reminders": [_export_reminder(r) for r in data.reminders],
            "preferences": _export_prefs(data.prefs),
        },
    }


def _export_usage(day: UsageDay) -> dict[str, Any]:
    return {
        "day": day.day.isoformat(),
        "model": day.model,
        "calls": day.calls,
        "prompt_tokens": day.prompt_tokens,
        "cached_tokens": day.cached_tokens,
        "completion_tokens": day.completion_tokens,
        "estimated_calls": day.estimated_calls,
    }


def _export_reminder(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": reminder.number,
        "message": reminder.message,
        "due_at": _iso(reminder.due_at),
        "fire_at": _iso(reminder.fire_at),
        "created_at": _iso(reminder.created_at),
        "chat": reminder.chat.value,
        "status": reminder.status.value,
        "late": reminder.late,
        "sent_at": _iso(reminder.sent_at) if reminder.sent_at else None,
        "note": reminder.note,
    }


def _export_prefs(prefs: PersonPrefs) -> dict[str, Any]:
    return {
        "timezone": prefs.timezone.key if prefs.timezone else None,
        "quiet_hours": (str(prefs.quiet_hours) if prefs.quiet_hours else "off")
        if prefs.quiet_set
        else None,
        "checkins": prefs.checkins,
    }


def _export_passage(passage: Passage) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "content": passage.content,
        "tags": list(passage.tags),
        "created_at": _iso(passage.created_at),
    }
    if passage.source:
        exported |= {"source": passage.source, "page": passage.page}
    return exported


def _export_file(file: StoredFile, index: int) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "id": f"file-{index}",
        "file_name": file.filename,
        "file_type": file.mime_type,
        "file_size": file.size,
        "processing_status": _FILE_STATUS[file.state],
        "total_chunks": file.pages,
        "content": file.note,
        "created_at": _iso(file.created_at),
        "kind": file.kind.value,
    }
    if file.data:
        exported["data_base64"] = base64.b64encode(file.data).decode("ascii")
    return exported


def _export_block(block: Block, block_id: str) -> dict[str, Any]:
    return {
        "id": block_id,
        "label": block.label,
        "value": block.value,
        "limit": block.limit,
        "description": block.description,
        "read_only": block.read_only,
        "metadata": {},
    }


def _export_message(message: StoredMessage, message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": message.role.value,
        "content": [{"type": "text", "text": message.content}] if message.content else [],
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        or None,
        "tool_call_id": message.tool_call_id,
        "created_at": _iso(message.created_at),
    }


def _export_version(version: BlockVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "actor": version.actor.value,
        "actor_name": version.actor_name,
        "old_value": version.old_value,
        "new_value": version.new_value,
        "created_at": _iso(version.created_at),
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


# --------------------------------------------------------------------- import


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """What one import may bring in. Blocks are also cut to the configured block limits, so an
    imported agent always fits the context window and can still fold its history."""

    max_bytes: int = 32 * 1024 * 1024
    max_blocks: int = 32
    max_messages: int = 100_000
    max_passages: int = 100_000
    max_message_chars: int = 64_000  # as runtime.max_stored_chars: the hard limit of one message
    max_summary_chars: int = 8_000


@dataclass(frozen=True, slots=True)
class ParsedAgentFile:
    snapshot: AgentSnapshot
    notes: tuple[str, ...]  # what was cut, repaired or skipped to make the file fit, one per line


def parse_agent_file(
    raw: bytes | str,
    defaults: Sequence[BlockSpec],
    now: datetime,
    limits: ImportLimits = ImportLimits(),
) -> ParsedAgentFile:
    """An ``AgentSnapshot`` from an Agent File (ours or Letta's) made to fit ``limits`` and the
    block limits of ``defaults``, with notes on what was changed; ``AgentFileError`` if the file
    cannot be imported. ``now`` stands in for any missing timestamp."""
    if len(raw) > limits.max_bytes:
        raise AgentFileError(f"it is over the import limit of {limits.max_bytes // 2**20} MB")
    try:
        data = json.loads(raw)
        return _parse(data, defaults, now, limits)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AgentFileError(f"not JSON: {exc}") from None
    except RecursionError:
        raise AgentFileError("its JSON is nested too deeply") from None


def _parse(
    data: Any, defaults: Sequence[BlockSpec], now: datetime, limits: ImportLimits
) -> ParsedAgentFile:
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list) or not data["agents"]:
        raise AgentFileError("no agents in the file (expected Letta's .af layout)")
    notes: list[str] = []  # what was cut, repaired or skipped, for the operator
    agent = _mapping(data["agents"][0], "agents[0]")
    blocks = _import_blocks(data, agent, defaults, limits, notes)
    imported = _import_messages(agent, now, limits, notes)
    in_context = _ids(agent.get("in_context_message_ids"), "in_context_message_ids")
    first_in_context = next((i for i, (sid, _) in enumerate(imported) if sid in in_context), None)
    extra: dict[str, Any] = data["agentcore"] if isinstance(data.get("agentcore"), dict) else {}
    name = clean_text(str(extra.get("display_name") or agent.get("name") or ""))
    snapshot = AgentSnapshot(
        display_name=name[:_MAX_NAME],
        blocks=tuple(blocks),
        messages=tuple(m for _, m in imported),
        passages=tuple(_import_passages(data.get("passages"), now, limits, notes)),
        in_context=len(imported) - first_in_context if first_in_context is not None else 0,
        summary=_cut("the summary", _text(extra.get("summary")), limits.max_summary_chars, notes),
    )
    return ParsedAgentFile(snapshot, tuple(notes))


def _cut(what: str, text: str, cap: int, notes: list[str]) -> str:
    if len(text) <= cap:
        return text
    notes.append(f"{what} was cut from {len(text):,} to {cap:,} characters")
    return text[:cap]


def _text(value: Any) -> str:
    return clean_text(str(value or ""))


def _import_blocks(
    data: dict[str, Any],
    agent: dict[str, Any],
    defaults: Sequence[BlockSpec],
    limits: ImportLimits,
    notes: list[str],
) -> list[BlockSpec]:
    wanted = _ids(agent.get("block_ids"), "block_ids")
    caps = {d.label: d.limit for d in defaults}
    other_cap = max(caps.values(), default=_DEFAULT_LIMIT)
    specs: dict[str, BlockSpec] = {}
    for item in _list(data.get("blocks"), "blocks"):
        block = _mapping(item, "block")
        if wanted and str(block.get("id")) not in wanted:
            continue
        label = _text(block.get("label"))
        if not valid_label(label):
            raise AgentFileError(f"block label {label[:60]!r} is not {LABEL_RULE}")
        cap = caps.get(label, other_cap)
        value = _cut(f"block {label}", _text(block.get("value")), cap, notes)
        specs[label] = BlockSpec(
            label,
            value,
            _limit(block.get("limit"), len(value), cap),
            _text(block.get("description"))[:_MAX_DESCRIPTION],
            bool(block.get("read_only")),
        )
    if len(specs) > limits.max_blocks:
        notes.append(f"only the first {limits.max_blocks} of {len(specs)} blocks were imported")
        specs = dict(list(specs.items())[: limits.max_blocks])
    for default in defaults:  # an agent without persona/human would have nowhere to remember
        specs.setdefault(default.label, default)
    return list(specs.values())


def _limit(raw: Any, length: int, cap: int) -> int:
    """The file's limit, at most the configured one and never below what the block holds."""
    try:
        limit = int(raw)
    except (TypeError, ValueError, OverflowError):
        limit = _DEFAULT_LIMIT
    return max(min(limit, cap), length, 1)


_Imported = list[tuple[str, NewMessage]]  # (the file's message id, the message)


def _import_messages(
    agent: dict[str, Any], now: datetime, limits: ImportLimits, notes: list[str]
) -> _Imported:
    items = _list(agent.get("messages"), "messages")
    imported: _Imported = []
    unknown: Counter[str] = Counter()
    sent: set[str] = set()  # ids of send_message calls, kept as their message's text
    for item in items:
        raw = _mapping(item, "message")
        role = _text(raw.get("role"))[:20]
        if role == Role.SYSTEM.value:
            continue  # system prompts are compiled fresh each turn
        if role not in _IMPORTED_ROLES:
            unknown[role] += 1
            continue
        message = _import_message(role, raw, now, sent)
        if message.role is not Role.TOOL or message.tool_call_id not in sent:
            imported.append((str(raw.get("id")), message))
    if unknown:
        roles = ", ".join(f"{role or '(none)'}: {n:,}" for role, n in unknown.most_common())
        if not imported:
            raise AgentFileError(
                f"none of its {len(items):,} messages has a role we know (user, assistant, "
                f"tool, system); found {roles}"
            )
        notes.append(f"{unknown.total():,} messages with unknown roles were skipped ({roles})")
    if len(imported) > limits.max_messages:
        notes.append(
            f"only the newest {limits.max_messages:,} of {len(imported):,} messages were imported"
        )
        imported = imported[-limits.max_messages :]
    cut = sum(1 for _, m in imported if len(m.content or "") > limits.max_message_chars)
    if cut:
        notes.append(
            f"{cut:,} messages over {limits.max_message_chars:,} characters were shortened"
        )
        imported = [(sid, _shortened(m, limits.max_message_chars)) for sid, m in imported]
    return _pair_tool_calls(imported, notes)


def _shortened(message: NewMessage, cap: int) -> NewMessage:
    if message.content is None or len(message.content) <= cap:
        return message
    return replace(message, content=message.content[:cap])


def _pair_tool_calls(items: _Imported, notes: list[str]) -> _Imported:
    """Keep only tool calls answered by the tool results right after them, and those results.

    A model API rejects a request whose history holds a tool call without its result (or a
    result without its call), so an unpaired one would break every later turn."""
    kept: _Imported = []
    dropped_calls = dropped_results = 0
    i = 0
    while i < len(items):
        source_id, message = items[i]
        results: _Imported = []
        i += 1
        while message.tool_calls and i < len(items) and items[i][1].role is Role.TOOL:
            results.append(items[i])
            i += 1
        if message.role is Role.TOOL:
            dropped_results += 1
            continue
        answered = {m.tool_call_id: (sid, m) for sid, m in reversed(results)}
        calls = tuple({c.id: c for c in message.tool_calls if c.id in answered}.values())
        dropped_calls += len(message.tool_calls) - len(calls)
        dropped_results += len(results) - len(calls)
        if calls or message.content:
            kept.append((source_id, replace(message, tool_calls=calls)))
            kept.extend(answered[c.id] for c in calls)
    if dropped_calls or dropped_results:
        notes.append(
            f"{dropped_calls:,} tool calls without a result and {dropped_results:,} tool results "
            "without a call were dropped"
        )
    return kept


def _import_message(role: str, raw: dict[str, Any], now: datetime, sent: set[str]) -> NewMessage:
    created = _time(raw.get("created_at"), now)
    text = _text_of(raw.get("content"))
    if role == "user":
        text = _unwrap_user_text(text)
    if role == "tool":
        return NewMessage(Role.TOOL, text, created, tool_call_id=_text(raw.get("tool_call_id")))
    calls = [_tool_call(c) for c in _list(raw.get("tool_calls"), "tool_calls")]
    # Letta agents often answer through send_message; we keep that as the message's text.
    sends = [c for c in calls if c.name == "send_message"]
    sent.update(c.id for c in sends)
    reply = _send_message_text(sends[0]) if sends and role == "assistant" else None
    other = tuple(c for c in calls if c.name != "send_message")
    return NewMessage(Role(role), reply if reply is not None else text, created, other)


def _text_of(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return clean_text(content)
    parts = [p.get("text", "") for p in _list(content, "content") if isinstance(p, dict)]
    return clean_text("".join(str(p) for p in parts)) or None


def _unwrap_user_text(text: str | None) -> str | None:
    """Older Letta files wrap user text as ``{"type": "user_message", "message": ...}``."""
    if not text or not text.lstrip().startswith("{"):
        return text
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return clean_text(payload["message"])
    return text


def _tool_call(raw: Any) -> ToolCall:
    call = _mapping(raw, "tool call")
    function = _mapping(call.get("function") or {}, "tool call function")
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCall(_text(call.get("id")), _text(function.get("name")), clean_text(arguments))


def _send_message_text(call: ToolCall) -> str | None:
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError:
        return None
    message = arguments.get("message") if isinstance(arguments, dict) else None
    return clean_text(message) if isinstance(message, str) else None


def _import_passages(
    raw: Any, now: datetime, limits: ImportLimits, notes: list[str]
) -> list[NewPassage]:
    passages = []
    for item in _list(raw, "passages"):
        passage = _mapping(item, "passage")
        content = _text(passage.get("content") or passage.get("text")).strip()
        if content:
            tags = tuple(_text(t)[:_MAX_TAG] for t in _list(passage.get("tags"), "tags"))
            created = _time(passage.get("created_at"), now)
            source, page = _text(passage.get("source") or "")[:_MAX_NAME], passage.get("page")
            page = page if isinstance(page, int) and source else None
            passages.append(NewPassage(content, tags, created, source, page))
    if len(passages) > limits.max_passages:
        notes.append(
            f"only the newest {limits.max_passages:,} of {len(passages):,} passages were imported"
        )
        passages = passages[-limits.max_passages :]
    cut = sum(1 for p in passages if len(p.content) > limits.max_message_chars)
    if cut:
        notes.append(
            f"{cut:,} passages over {limits.max_message_chars:,} characters were shortened"
        )
        passages = [replace(p, content=p.content[: limits.max_message_chars]) for p in passages]
    return passages


def _time(raw: Any, fallback: datetime) -> datetime:
    if not raw:
        return fallback
    try:
        parsed = datetime.fromisoformat(str(raw))  # Python 3.11 reads "Z" too
    except ValueError:
        raise AgentFileError(f"bad timestamp {str(raw)[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ids(value: Any, what: str) -> set[str]:
    return {str(item) for item in _list(value, what)}


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AgentFileError(f"{what} must be an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AgentFileError(f"{what} must be a list")
    return value
