"""The storage the scheduler and the reminder tools need: one narrow Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from agentcore.schedule.model import (
    DeliveryScope,
    DueReminder,
    NewReminder,
    PersonPrefs,
    Reminder,
    ReminderCounts,
    ReminderStatus,
)
from agentcore.storage.base import Storage
from agentcore.types import AgentKey


class ReminderStore(Protocol):
    async def add_reminder(self, new: NewReminder, max_pending: int) -> int | None:
        """Store a pending reminder and return its number for this person (1, 2, ...); None,
        storing nothing, if the person has ``max_pending`` pending already (checked in the
        same statement, so a burst cannot overshoot)."""
        ...

    async def list_reminders(self, agent_id: int, *, pending_only: bool) -> list[Reminder]:
        """The person's reminders (not check-ins), by due time; waiting ones only, or all."""
        ...

    async def cancel_reminder(self, agent_id: int, number: int) -> bool:
        """Cancel the person's pending reminder ``number``; False if there is none pending."""
        ...

    async def next_fire_at(
        self, scopes: Sequence[DeliveryScope], lease: timedelta
    ) -> datetime | None:
        """When the earliest pending reminder within ``scopes`` is due, or a claim on one
        runs out (its process died); None if there is nothing."""
        ...

    async def claim_due(
        self,
        now: datetime,
        scopes: Sequence[DeliveryScope],
        limit: int,
        lease: timedelta,
        late_after: timedelta,
    ) -> list[DueReminder]:
        """Atomically claim up to ``limit`` reminders due by ``now`` within ``scopes`` (and
        claims older than ``lease``, left by a process that died), earliest first, so no other
        process can take them. One claimed more than ``late_after`` after its time is marked
        late."""
        ...

    async def postpone_reminder(self, reminder_id: int, fire_at: datetime, note: str) -> None:
        """Give a claimed reminder back, to go out at ``fire_at`` (quiet hours, daily cap)."""
        ...

    async def finish_reminder(
        self, reminder_id: int, status: ReminderStatus, now: datetime, note: str = ""
    ) -> None:
        """Record how a claimed reminder ended (sent, skipped or failed)."""
        ...

    async def sent_since(self, agent_id: int, since: datetime) -> list[datetime]:
        """When unprompted messages (reminders, check-ins) were sent to this person since
        ``since``, oldest first."""
        ...

    async def add_checkins(
        self,
        now: datetime,
        silent_from: datetime,
        silent_to: datetime,
        scopes: Sequence[DeliveryScope],
    ) -> int:
        """A check-in, due now, for each person within ``scopes`` whose last message was
        between ``silent_from`` and ``silent_to`` and who has not turned check-ins off; at most
        one per silence (a person who wrote again starts a new one). Returns how many."""
        ...

    async def next_silence(
        self, after: datetime, scopes: Sequence[DeliveryScope]
    ) -> datetime | None:
        """The earliest last message after ``after`` of a person who has not turned check-ins
        off (their silence is the next to grow long enough for a check-in)."""
        ...

    async def load_prefs(self, key: AgentKey) -> PersonPrefs: ...

    async def save_prefs(self, agent_id: int, prefs: PersonPrefs) -> None: ...

    async def reminder_counts(self, since: datetime) -> ReminderCounts: ...


class ReminderStorage(Storage, ReminderStore, Protocol):
    """A backend that stores reminders too (every backend the bot runs on)."""
