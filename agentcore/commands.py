"""Chat commands: one implementation for every platform and for the operator CLI.

Adapters pass the text through unchanged (after stripping platform decorations such as
Telegram's ``@botname``); this module parses it, runs it against storage, and returns a Reply.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agentcore.clock import Clock
from agentcore.memory.prompt import format_time
from agentcore.settings import AgentSettings
from agentcore.storage.base import Block, Storage
from agentcore.types import InboundMessage, Reply, ReplyKind

_COMMAND_RE = re.compile(r"^/([A-Za-z][A-Za-z0-9_]{0,31})(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    description: str  # one line, shown in platform command menus (≤ 100 chars)
    usage: str = ""


USER_COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("start", "What this bot is and what it remembers"),
    CommandInfo("help", "List the commands and what the bot stores"),
    CommandInfo("memory", "Show what I keep in mind about you (your core memory)"),
)


def parse_command(text: str) -> tuple[str, str] | None:
    """``("memory", "args")`` for ``/memory args``; None if the text is not a command."""
    match = _COMMAND_RE.match(text.strip())
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def render_blocks(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        flag = ", read-only" if block.read_only else ""
        value = block.value.strip() or "(empty)"
        parts.append(f"**{block.label}** ({len(block.value)}/{block.limit} chars{flag})\n{value}")
    return "\n\n".join(parts)


Handler = Callable[[InboundMessage, str], Awaitable[Reply]]


class Commands:
    def __init__(self, *, storage: Storage, clock: Clock, settings: AgentSettings) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._handlers: dict[str, Handler] = {
            "start": self._start,
            "help": self._help,
            "memory": self._memory,
        }

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def run(self, message: InboundMessage, name: str, args: str) -> Reply:
        handler = self._handlers.get(name)
        if handler is None:
            return Reply(
                f"I don't know the command /{name}. Send /help to see what I can do.",
                ReplyKind.COMMAND,
            )
        return await handler(message, args)

    async def _start(self, message: InboundMessage, args: str) -> Reply:
        return Reply(
            "Hi! I'm a chat companion with a long memory: I remember what you tell me across "
            "conversations, weeks apart. Just talk to me.\n\n"
            "Send /memory to see what I keep in mind about you, and /help for everything else.",
            ReplyKind.COMMAND,
        )

    async def _help(self, message: InboundMessage, args: str) -> Reply:
        lines = [f"/{c.name} — {c.description}" for c in USER_COMMANDS]
        return Reply(
            "Commands:\n" + "\n".join(lines) + "\n\n"
            "What I store: every message we exchange (so I can look things up later), notes I "
            "choose to keep, and a short profile of you that I update as we talk. "
            "Nobody else's conversations can see yours.",
            ReplyKind.COMMAND,
        )

    async def _memory(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            return Reply("I don't remember anything about you yet.", ReplyKind.COMMAND, True)
        blocks = await self._storage.list_blocks(agent.id)
        since = ""
        if agent.last_user_at is not None:
            since = (
                f"\n\n_{agent.message_count} messages stored; last message "
                + format_time(agent.last_user_at, self._settings.memory.timezone)
                + "_"
            )
        return Reply(
            "Your core memory, as I see it:\n\n" + render_blocks(blocks) + since,
            ReplyKind.COMMAND,
            private=True,
        )
