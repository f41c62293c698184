"""Time as a seam: the core never calls ``datetime.now()`` directly, so tests can make weeks
pass in milliseconds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A long sleep is taken in naps of at most this, each checking the wall clock again: the loop's
# monotonic clock stands still while the machine is suspended, the wall clock does not.
MAX_NAP = timedelta(minutes=10)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class Timer(Clock, Protocol):
    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now()`` has reached ``when``."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while (left := when - self.now()) > timedelta(0):  # noqa: ASYNC110  (waits for a time)
            await asyncio.sleep(min(left, MAX_NAP).total_seconds())


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    def set(self, when: datetime) -> None:
        self._now = when
        for wake_at, sleeper in self._sleepers:
            if wake_at <= when and not sleeper.done():
                sleeper.set_result(None)
        self._sleepers = [s for s in self._sleepers if not s[1].done()]

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            return
        sleeper = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, sleeper))
        await sleeper


def to_millis(when: datetime) -> int:
    """Timestamps are stored as integer milliseconds since the epoch (UTC)."""
    return int(when.timestamp() * 1000)


def from_millis(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
