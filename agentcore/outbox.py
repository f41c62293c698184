"""How the core speaks first: adapters deliver a message nobody has just asked for.

Replies to a message go back the way the message came; a reminder has no message to answer, so
the scheduler hands it to the ``Outbox`` of the person's platform with where it should go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agentcore.schedule.model import DeliveryScope
from agentcore.types import AgentKey, ChatKind, Reply


@dataclass(frozen=True, slots=True)
class Delivery:
    key: AgentKey  # to whom
    reply: Reply
    chat: ChatKind  # GROUP: to the group in ``route``; PRIVATE: the person's private chat
    route: str = ""  # the group's route, as the adapter stored it ('' for private)


class Outbox(Protocol):
    @property
    def scope(self) -> DeliveryScope:
        """Whom this adapter can reach (its platform's people; the terminal: its user)."""
        ...

    async def deliver(self, delivery: Delivery) -> bool:
        """Send ``delivery``; True once the platform took it, False (logged) if it refused or
        could not be reached. Never raises for platform errors."""
        ...
