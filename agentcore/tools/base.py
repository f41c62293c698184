"""What a tool is, the context it runs in, and argument checking.

A tool is one small async function bound to a ``ToolContext`` that holds *this* agent's id:
nothing a model writes in its arguments can point a tool at another user's memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from agentcore.clock import Clock
from agentcore.llm.base import ToolSpec
from agentcore.records import Block
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import PersonPrefs
from agentcore.settings import ReminderSettings
from agentcore.storage.protocols import BlockStore, MessageStore, PassageStore, ReminderStore
from agentcore.types import ChatKind, clean_text

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool could not do what was asked; the message goes back to the model as a hint."""


class ToolStorage(BlockStore, MessageStore, PassageStore, Protocol):
    """The slice of storage tools may touch."""


@dataclass(slots=True)
class Scheduling:
    """What the reminder tools need in a turn: where a reminder set now would go, and the
    person's preferences (``set_timezone`` updates them for the rest of the turn)."""

    store: ReminderStore
    settings: ReminderSettings
    doorbell: Doorbell
    prefs: PersonPrefs
    chat: ChatKind
    route: str  # the group's route when set in a group; '' for the private chat


@dataclass(slots=True)
class ToolContext:
    storage: ToolStorage
    agent_id: int
    blocks: dict[str, Block]  # this turn's view of core memory, updated by edits
    clock: Clock
    tz: ZoneInfo
    search_limit: int
    person: str  # how search results name the person ("Brad", or "user")
    scheduling: Scheduling | None = None  # None where reminders are turned off


ToolFunction = Callable[..., Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: ToolFunction

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


def schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# Letta's agent-loop controls: Letta-trained models and imported Letta agents add them to every
# call. Our loop already continues after any tool call, so they carry nothing for us.
LETTA_CONTROLS = frozenset({"request_heartbeat", "inner_thoughts"})


def decode_arguments(raw: str) -> dict[str, Any]:
    """A model's arguments as an object: JSON text, also double-encoded (a JSON string that
    holds the JSON object), as some servers and fine-tunes send it."""
    try:
        args = json.loads(raw) if raw.strip() else {}
        if isinstance(args, str):
            args = json.loads(args) if args.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolError(f"arguments are not valid JSON ({exc.msg}); send a JSON object") from exc
    if not isinstance(args, dict):
        raise ToolError("arguments must be a JSON object")
    return args


def parse_arguments(tool: Tool, raw: str) -> dict[str, Any]:
    """Decode and check a model's JSON arguments against the tool's schema. Arguments the tool
    does not take are ignored (models add their own), never an error."""
    args = decode_arguments(raw)
    properties: dict[str, Any] = tool.parameters["properties"]
    unknown = sorted(set(args) - set(properties) - LETTA_CONTROLS)
    if unknown:
        log.debug("%s: ignoring unexpected argument(s) %s", tool.name, unknown)
    missing = [name for name in tool.parameters["required"] if args.get(name) is None]
    if missing:
        raise ToolError(f"missing required argument(s) {missing}")
    return {
        name: _coerce(name, value, properties[name])
        for name, value in args.items()
        if name in properties
    }


def _coerce(name: str, value: Any, prop: dict[str, Any]) -> Any:
    """Accept what models commonly send (``"5"`` for 5, ``"a"`` for ``["a"]``), refuse the rest."""
    if value is None:
        return None
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds:
        if isinstance(value, bool):
            raise ToolError(f"{name} must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ToolError(f"{name} must be an integer")
    if "array" in kinds:
        if isinstance(value, str):
            return [clean_text(value)]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [clean_text(v) for v in value]
        raise ToolError(f"{name} must be a list of strings")
    if "string" in kinds:
        if isinstance(value, str):
            return clean_text(value)  # JSON may carry lone surrogates, which cannot be stored
        raise ToolError(f"{name} must be a string")
    return value
