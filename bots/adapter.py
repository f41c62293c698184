"""What the composition root needs from every platform adapter."""

from __future__ import annotations

from typing import Protocol

from agentcore.outbox import Outbox


class AdapterError(Exception):
    """A platform refused to start or to go on (bad token, missing intent, a second instance).
    The message is one line for the operator, naming the fix."""


class Adapter(Outbox, Protocol):
    """A platform: receives messages for the runtime, and delivers what the core sends on its
    own (reminders) as an ``Outbox``."""

    name: str  # also the phase name in the startup log line

    async def start(self) -> None:
        """Connect and return once ready to receive messages."""
        ...

    async def finished(self) -> int:
        """Wait until the adapter stops on its own; return the process exit code it asks for
        (0 for a console at end of input, non-zero for a fatal platform error)."""
        ...

    async def stop(self) -> None:
        """Stop receiving, let replies in progress go out, disconnect. Idempotent."""
        ...
