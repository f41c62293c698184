"""Clients built on first use (building one typically imports the ``openai`` SDK, most of a
second), so start-up, and a bot that never needs one, never pays for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class OnFirstUse(Generic[C]):
    """The client ``factory`` builds, built once, in the background from ``start()`` or on the
    first ``get()``; callers that arrive meanwhile wait for the same build."""

    def __init__(self, factory: Callable[[], Awaitable[C]]) -> None:
        self._factory = factory
        self._task: asyncio.Task[C] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())

    async def get(self) -> C:
        self.start()
        assert self._task is not None
        # Shielded: one caller cancelled while waiting must not cancel the build for the others.
        return await asyncio.shield(self._task)

    async def close(self) -> None:
        """Close the client if it was built; stop a build still under way."""
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled() and self._task.exception() is None:
            await self._task.result().close()
