"""What the scheduler stores: reminders (and check-ins) and each person's preferences."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from agentcore.types import AgentKey, ChatKind

_QUIET_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ReminderKind(enum.Enum):
    REMINDER = "reminder"  # asked for by the person (schedule_message)
    CHECKIN = "checkin"  # the agent may write after a long silence


class ReminderStatus(enum.Enum):
    PENDING = "pending"
    CLAIMED = "claimed"  # a process is running its turn right now
    SENT = "sent"
    SKIPPED = "skipped"  # a check-in the agent chose not to send
    FAILED = "failed"  # the platform refused it (e.g. the person blocked the bot)
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class NewReminder:
    agent_id: int
    message: str
    due_at: datetime  # the instant the person asked for
    created_at: datetime
    chat: ChatKind  # where it was set: a group reminder goes back to that group
    route: str  # the group's route (adapter-opaque); '' for the person's private chat


@dataclass(frozen=True, slots=True)
class Reminder:
    number: int  # per person: what the person and the agent call it (#1, #2, ...)
    message: str
    due_at: datetime
    fire_at: datetime  # when it goes out: ``due_at``, or later if postponed
    created_at: datetime
    chat: ChatKind
    status: ReminderStatus
    late: bool
    sent_at: datetime | None
    note: str  # why it was postponed or failed


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A reminder (or check-in) claimed for sending: its turn runs now, once."""

    id: int  # the row, across everyone
    agent_id: int
    key: AgentKey
    kind: ReminderKind
    number: int | None
    message: str
    due_at: datetime
    fire_at: datetime
    created_at: datetime
    chat: ChatKind
    route: str
    note: str
    late: bool  # claimed well after its time: the bot was down


@dataclass(frozen=True, slots=True)
class DeliveryScope:
    """Whose reminders a process can deliver: a platform's, or one person's (the terminal)."""

    platform: str
    user_id: str | None = None

    def covers(self, key: AgentKey) -> bool:
        return key.platform == self.platform and self.user_id in (None, key.user_id)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window of local time in which nothing is sent unprompted (may span midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """``22:00-07:00`` → the window; ``off``/``none``/empty → None; ``ValueError`` else."""
        if text.strip().lower() in {"", "off", "none"}:
            return None
        match = _QUIET_RE.match(text)
        if match is None:
            raise ValueError(f"quiet hours must look like 22:00-07:00, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            window = cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"quiet hours must be real times, got {text!r}") from None
        if window.start == window.end:
            raise ValueError("quiet hours must start and end at different times")
        return window

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def ends_after(self, when: datetime, tz: ZoneInfo) -> datetime | None:
        """If ``when`` falls in the window (in ``tz``), the instant the window ends; else None."""
        local = when.astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
            end_day = local.date()
        else:  # e.g. 22:00-07:00 spans midnight
            inside = clock >= self.start or clock < self.end
            end_day = local.date() + timedelta(days=1 if clock >= self.start else 0)
        if not inside:
            return None
        ends = datetime.combine(end_day, self.end).replace(tzinfo=tz)
        return ends.astimezone(when.tzinfo)


@dataclass(frozen=True, slots=True)
class PersonPrefs:
    """A person's own settings; None means the operator's default."""

    timezone: ZoneInfo | None = None
    quiet_hours: QuietHours | None = None
    quiet_set: bool = False  # the person chose quiet hours (None then means "none at all")
    checkins: bool = True


@dataclass(frozen=True, slots=True)
class ReminderCounts:
    """For the operator's /admin stats."""

    pending: int
    sent_today: int
    late: int  # ever sent late (the bot was down at the due time)
    failed: int
    people_with_zone: int
