"""Per-person flood control: a sliding-window rate limit with one notice per window.

State is bounded: at most ``max_people`` people are tracked (least recently seen dropped
first), each with at most ``per_minute`` timestamps.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentcore.types import AgentKey

WINDOW = timedelta(minutes=1)


@dataclass
class _Window:
    times: deque[datetime] = field(default_factory=deque)
    noticed: dict[str, datetime] = field(default_factory=dict)  # notice -> when last given


class RateLimiter:
    def __init__(self, per_minute: int, max_people: int = 10_000) -> None:
        self._per_minute = per_minute
        self._max_people = max_people
        self._people: OrderedDict[AgentKey, _Window] = OrderedDict()

    def allow(self, key: AgentKey, now: datetime) -> bool:
        """Count a message; False if it is over this person's limit for the last minute."""
        window = self._window(key)
        while window.times and now - window.times[0] >= WINDOW:
            window.times.popleft()
        if len(window.times) >= self._per_minute:
            return False
        window.times.append(now)
        return True

    def should_notify(self, key: AgentKey, now: datetime, notice: str = "") -> bool:
        """True once per window for each kind of notice, so a flood gets one notice (say,
        "slow down", and later "declined"), not one per message."""
        window = self._window(key)
        last = window.noticed.get(notice)
        if last is not None and now - last < WINDOW:
            return False
        window.noticed[notice] = now
        return True

    def _window(self, key: AgentKey) -> _Window:
        window = self._people.get(key)
        if window is None:
            window = self._people[key] = _Window()
            while len(self._people) > self._max_people:
                self._people.popitem(last=False)
        self._people.move_to_end(key)
        return window


class OncePerPeriod:
    """Who was told something in which period (a day, a budget day), so a notice goes out once
    per period per person. Bounded: the least recently told are forgotten first."""

    def __init__(self, max_people: int = 10_000) -> None:
        self._max_people = max_people
        self._told: OrderedDict[AgentKey, Hashable] = OrderedDict()

    def first(self, key: AgentKey, period: Hashable) -> bool:
        """True if ``key`` was not told anything in ``period`` yet (and remember it now)."""
        if self._told.get(key) == period:
            return False
        self._told[key] = period
        self._told.move_to_end(key)
        while len(self._told) > self._max_people:
            self._told.popitem(last=False)
        return True
