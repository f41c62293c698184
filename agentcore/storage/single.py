"""Roles and pacing for a database that one process uses (SQLite, kept to one bot process by
``bots.instance``): held in memory, with the meaning ``Storage.take_role`` and ``Storage.pace``
have across processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import time


class LocalRole:
    def __init__(self, roles: LocalRoles, name: str) -> None:
        self._roles = roles
        self._name = name
        self._released = asyncio.Event()

    async def alive(self) -> bool:
        return not self._released.is_set()

    async def lost(self) -> None:
        # Only one process uses the database, so nobody can take the role away.
        await self._released.wait()

    async def release(self) -> None:
        if not self._released.is_set():
            self._released.set()
            await self._roles.free(self._name)


class LocalRoles:
    def __init__(self) -> None:
        self._held: set[str] = set()
        self._freed = asyncio.Condition()
        self._last: dict[str, float] = {}  # pace: the last moment booked, by name

    async def take_role(self, name: str, *, wait: bool) -> LocalRole | None:
        async with self._freed:
            while name in self._held:
                if not wait:
                    return None
                await self._freed.wait()
            self._held.add(name)
        return LocalRole(self, name)

    async def free(self, name: str) -> None:
        async with self._freed:
            self._held.discard(name)
            self._freed.notify_all()

    async def pace(self, name: str, interval: float) -> None:
        """Book the next free moment (``interval`` after the last one booked, or now), then
        wait for it."""
        now = time.monotonic()
        booked = self._last[name] = max(self._last.get(name, -math.inf) + interval, now)
        if booked > now:
            await asyncio.sleep(booked - now)
