"""Chat commands: one implementation for every platform and for the operator CLI.

Adapters pass command text through unchanged (after stripping platform decorations such as
Telegram's ``@botname``); ``Commands.run`` parses it, checks who may run it, and answers.
"""

from __future__ import annotations

from agentcore.clock import Clock
from agentcore.commands.admin import AdminCommands, NoTurns, TurnLocks
from agentcore.commands.schedule import ScheduleCommands
from agentcore.commands.spec import (
    ADMIN_COMMAND,
    ADMIN_VERBS,
    OPERATORS_ONLY,
    USER_COMMANDS,
    CommandInfo,
    is_costly,
    parse_command,
)
from agentcore.commands.user import UserCommands
from agentcore.settings import AgentSettings, UsageSettings
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey, ChatKind, InboundMessage, Reply, ReplyKind

PRIVATE_ONLY = "Operator commands only work in a private chat with me."

__all__ = [
    "ADMIN_COMMAND",
    "ADMIN_VERBS",
    "OPERATORS_ONLY",
    "USER_COMMANDS",
    "CommandInfo",
    "Commands",
    "is_costly",
    "parse_command",
]


class Commands:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        settings: AgentSettings,
        usage: UsageSettings,
        admins: frozenset[AgentKey] = frozenset(),
        model: str = "",
        turns: TurnLocks | None = None,
    ) -> None:
        """``turns`` are the runtime's per-person turn locks (none where no turns run)."""
        self._admins = admins
        self._user = UserCommands(
            storage=storage,
            clock=clock,
            settings=settings,
            model=model,
            usage=usage,
            is_operator=self.is_operator,
        )
        schedule = ScheduleCommands(storage=storage, clock=clock, settings=settings)
        self._user.handlers |= schedule.handlers
        self._admin = AdminCommands(
            storage=storage,
            clock=clock,
            settings=settings,
            usage=usage,
            turns=turns if turns is not None else NoTurns(),
        )

    def is_operator(self, key: AgentKey) -> bool:
        """Operators: the configured admins, and whoever sits at the terminal."""
        return key in self._admins or key.platform == "console"

    async def run(self, message: InboundMessage, name: str, args: str) -> Reply:
        if name == ADMIN_COMMAND.name:
            return await self._admin_from_chat(message, args)
        handler = self._user.handlers.get(name)
        if handler is None:
            return Reply(
                f"I don't know the command /{name}. Send /help to see what I can do.",
                ReplyKind.COMMAND,
            )
        return await handler(message, args)

    async def _admin_from_chat(self, message: InboundMessage, args: str) -> Reply:
        # A refusal says nothing about whether the named user exists.
        if not self.is_operator(message.key):
            return Reply(OPERATORS_ONLY, ReplyKind.COMMAND, private=True)
        if message.chat is not ChatKind.PRIVATE:
            return Reply(PRIVATE_ONLY, ReplyKind.COMMAND, private=True)
        return await self.admin(str(message.key), args, local=message.key.platform == "console")

    async def admin(self, actor: str, args: str, *, local: bool) -> Reply:
        """Run an operator verb (``users 10``, ``set telegram:42 human ...``) as ``actor``."""
        return await self._admin.run(actor, args, local=local)
