"""How a new reminder wakes the scheduler, which otherwise sleeps until the next due time."""

from __future__ import annotations

import asyncio


class Doorbell:
    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        """Something changed: look at the schedule again (cheap; repeated rings merge)."""
        self._rung.set()

    def clear(self) -> None:
        self._rung.clear()

    async def wait(self) -> None:
        await self._rung.wait()
