"""Letta Agent File (``.af``) export and import.

The layout is Letta's ``AgentFileSchema``: top-level ``agents``, ``blocks``, ``tools`` (and
empty ``groups``, ``files``, ``sources``, ``mcp_servers``), each agent holding ``block_ids``,
``messages`` (with ``created_at``) and ``in_context_message_ids``. Archival passages are not part
of Letta's schema; they travel under an extra top-level ``passages`` key (Letta ignores unknown
keys), and our block history, running summary and model usage under ``agentcore``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentcore.messages import Role, ToolCall
from agentcore.records import (
    AgentRecord,
    AgentSnapshot,
    Block,
    BlockSpec,
    BlockVersion,
    NewMessage,
    NewPassage,
    Passage,
    StoredMessage,
    UsageDay,
)

FORMAT = "agentcore-af-1"
_DEFAULT_LIMIT = 5000


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
        "files": [],
        "sources": [],
        "tools": [],
        "mcp_servers": [],
        "metadata": {"exported_by": "agentcore", "format": FORMAT},
        "created_at": _iso(now),
        "passages": [
            {"content": p.content, "tags": list(p.tags), "created_at": _iso(p.created_at)}
            for p in data.passages
        ],
        "agentcore": {
            "user": str(agent.key),
            "display_name": agent.display_name,
            "summary": agent.summary,
            "block_history": {
                label: [_export_version(v) for v in versions]
                for label, versions in data.history.items()
            },
            "usage": [_export_usage(day) for day in data.usage],
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


def parse_agent_file(
    raw: bytes | str, defaults: Sequence[BlockSpec], now: datetime
) -> AgentSnapshot:
    """An ``AgentSnapshot`` from an Agent File (ours or Letta's); ``AgentFileError`` if not.

    ``now`` stands in for any missing timestamp."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AgentFileError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list) or not data["agents"]:
        raise AgentFileError("no agents in the file (expected Letta's .af layout)")
    agent = _mapping(data["agents"][0], "agents[0]")
    blocks = _import_blocks(data, agent, defaults)
    messages, source_ids = _import_messages(agent, now)
    in_context = set(_list(agent.get("in_context_message_ids"), "in_context_message_ids"))
    first_in_context = next((i for i, sid in enumerate(source_ids) if sid in in_context), None)
    extra: dict[str, Any] = data["agentcore"] if isinstance(data.get("agentcore"), dict) else {}
    return AgentSnapshot(
        display_name=str(extra.get("display_name") or agent.get("name") or ""),
        blocks=tuple(blocks),
        messages=tuple(messages),
        passages=tuple(_import_passages(data.get("passages"), now)),
        in_context=len(messages) - first_in_context if first_in_context is not None else 0,
        summary=str(extra.get("summary") or ""),
    )


def _import_blocks(
    data: dict[str, Any], agent: dict[str, Any], defaults: Sequence[BlockSpec]
) -> list[BlockSpec]:
    wanted = set(_list(agent.get("block_ids"), "block_ids"))
    specs: dict[str, BlockSpec] = {}
    for item in _list(data.get("blocks"), "blocks"):
        block = _mapping(item, "block")
        if wanted and block.get("id") not in wanted:
            continue
        label, value = str(block.get("label") or ""), str(block.get("value") or "")
        if not label:
            raise AgentFileError("a block has no label")
        limit = _limit(block.get("limit"), len(value))
        specs[label] = BlockSpec(
            label, value, limit, str(block.get("description") or ""), bool(block.get("read_only"))
        )
    for default in defaults:  # an agent without persona/human would have nowhere to remember
        specs.setdefault(default.label, default)
    return list(specs.values())


def _limit(raw: Any, length: int) -> int:
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        limit = _DEFAULT_LIMIT
    return max(limit, length, 1)  # never store a block that is already over its limit


def _import_messages(agent: dict[str, Any], now: datetime) -> tuple[list[NewMessage], list[str]]:
    messages: list[NewMessage] = []
    source_ids: list[str] = []
    for item in _list(agent.get("messages"), "messages"):
        raw = _mapping(item, "message")
        message = _import_message(raw, now)
        if message is not None:
            messages.append(message)
            source_ids.append(str(raw.get("id")))
    return messages, source_ids


def _import_message(raw: dict[str, Any], now: datetime) -> NewMessage | None:
    role = str(raw.get("role"))
    if role not in {"user", "assistant", "tool"}:
        return None  # system prompts are compiled fresh each turn
    created = _time(raw.get("created_at"), now)
    text = _text_of(raw.get("content"))
    if role == "user":
        text = _unwrap_user_text(text)
    if role == "tool":
        return NewMessage(Role.TOOL, text, created, tool_call_id=str(raw.get("tool_call_id") or ""))
    calls = [_tool_call(c) for c in _list(raw.get("tool_calls"), "tool_calls")]
    # Letta agents often answer through send_message; we keep that as the message's text.
    sends = [c for c in calls if c.name == "send_message"]
    reply = _send_message_text(sends[0]) if sends and role == "assistant" else None
    other = tuple(c for c in calls if c.name != "send_message")
    return NewMessage(Role(role), reply if reply is not None else text, created, other)


def _text_of(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in _list(content, "content") if isinstance(p, dict)]
    return "".join(str(p) for p in parts) or None


def _unwrap_user_text(text: str | None) -> str | None:
    """Older Letta files wrap user text as ``{"type": "user_message", "message": ...}``."""
    if not text or not text.lstrip().startswith("{"):
        return text
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return text


def _tool_call(raw: Any) -> ToolCall:
    call = _mapping(raw, "tool call")
    function = _mapping(call.get("function") or {}, "tool call function")
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCall(str(call.get("id") or ""), str(function.get("name") or ""), arguments)


def _send_message_text(call: ToolCall) -> str | None:
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError:
        return None
    message = arguments.get("message") if isinstance(arguments, dict) else None
    return message if isinstance(message, str) else None


def _import_passages(raw: Any, now: datetime) -> list[NewPassage]:
    passages = []
    for item in _list(raw, "passages"):
        passage = _mapping(item, "passage")
        content = str(passage.get("content") or passage.get("text") or "").strip()
        if content:
            tags = tuple(str(t) for t in _list(passage.get("tags"), "tags"))
            passages.append(NewPassage(content, tags, _time(passage.get("created_at"), now)))
    return passages


def _time(raw: Any, fallback: datetime) -> datetime:
    if not raw:
        return fallback
    try:
        parsed = datetime.fromisoformat(str(raw))  # Python 3.11 reads "Z" too
    except ValueError:
        raise AgentFileError(f"bad timestamp {raw!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
