"""``ReminderStore`` on SQLite: mixed into ``SQLiteStorage``, using its reader and writer.

Claiming is one ``UPDATE ... RETURNING`` statement, so SQLite runs it atomically: a reminder is
claimed by exactly one caller, however many ask at once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentcore.clock import from_millis, to_millis
from agentcore.schedule.model import (
    DeliveryScope,
    DueReminder,
    NewReminder,
    PersonPrefs,
    QuietHours,
    Reminder,
    ReminderCounts,
    ReminderKind,
    ReminderStatus,
)
from agentcore.schedule.store import ReminderStore
from agentcore.types import AgentKey, ChatKind

log = logging.getLogger(__name__)

_WAITING = "('pending', 'claimed')"
# "reminders r CROSS JOIN agents a" makes SQLite walk the reminders first, in due order along
# their partial index, and stop at the first match; left to itself it may start from the agents
# and sort every pending reminder on each call.
_REMINDER_COLUMNS = (
    "number, message, due_at, fire_at, created_at, chat, status, late, sent_at, note"
)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _scoped(scopes: Sequence[DeliveryScope]) -> tuple[str, list[Any]]:
    """SQL over ``a`` (agents) matching any of ``scopes``, and its parameters."""
    clauses, params = [], []
    for scope in scopes:
        clauses.append("(a.platform = ? AND (? IS NULL OR a.user_id = ?))")
        params += [scope.platform, scope.user_id, scope.user_id]
    return "(" + " OR ".join(clauses or ["0"]) + ")", params


class SQLiteReminders:
    """The reminder half of ``SQLiteStorage``; the class that mixes it in provides these."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def add_reminder(self, new: NewReminder, max_pending: int) -> int | None:
        rows = await self._write(
            "INSERT INTO reminders (agent_id, number, kind, message, due_at, fire_at, created_at,"
            " chat, route) SELECT ?, COALESCE((SELECT MAX(number) FROM reminders WHERE"
            " agent_id = ?), 0) + 1, 'reminder', ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM"
            f" reminders WHERE agent_id = ? AND status IN {_WAITING}) < ? RETURNING number",
            (
                new.agent_id,
                new.agent_id,
                new.message,
                to_millis(new.due_at),
                to_millis(new.due_at),
                to_millis(new.created_at),
                new.chat.value,
                new.route,
                new.agent_id,
                max_pending,
            ),
        )
        return int(rows[0][0]) if rows else None

    async def list_reminders(self, agent_id: int, *, pending_only: bool) -> list[Reminder]:
        waiting = f" AND status IN {_WAITING}" if pending_only else ""
        rows = await self._read(
            f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE agent_id = ? AND kind = 'reminder'"
            f"{waiting} ORDER BY fire_at, number",
            (agent_id,),
        )
        return [_reminder(r) for r in rows]

    async def cancel_reminder(self, agent_id: int, number: int) -> bool:
        rows = await self._write(
            "UPDATE reminders SET status = 'cancelled' WHERE agent_id = ? AND number = ? AND"
            " status = 'pending' RETURNING id",
            (agent_id, number),
        )
        return bool(rows)

    async def next_fire_at(
        self, scopes: Sequence[DeliveryScope], lease: timedelta
    ) -> datetime | None:
        scope, params = _scoped(scopes)
        rows = await self._read(
            "SELECT MIN(t) FROM ("
            "SELECT * FROM (SELECT r.fire_at AS t FROM reminders r CROSS JOIN agents a"
            f" WHERE a.id = r.agent_id AND r.status = 'pending' AND {scope} ORDER BY r.fire_at"
            " LIMIT 1) UNION ALL "
            "SELECT * FROM (SELECT r.claimed_at + ? AS t FROM reminders r CROSS JOIN agents a"
            f" WHERE a.id = r.agent_id AND r.status = 'claimed' AND {scope} ORDER BY r.claimed_at"
            " LIMIT 1))",
            (*params, _ms(lease), *params),
        )
        return None if rows[0][0] is None else from_millis(rows[0][0])

    async def claim_due(
        self,
        now: datetime,
        scopes: Sequence[DeliveryScope],
        limit: int,
        lease: timedelta,
        late_after: timedelta,
    ) -> list[DueReminder]:
        scope, params = _scoped(scopes)
        ms = to_millis(now)
        rows = await self._write(
            "UPDATE reminders SET status = 'claimed', claimed_at = ?,"
            " late = late OR ? - fire_at > ? WHERE id IN ("
            "SELECT id FROM ("
            "SELECT r.id, r.fire_at FROM reminders r CROSS JOIN agents a WHERE a.id = r.agent_id"
            f" AND r.status = 'pending' AND r.fire_at <= ? AND {scope} UNION ALL "
            "SELECT r.id, r.fire_at FROM reminders r CROSS JOIN agents a WHERE a.id = r.agent_id"
            f" AND r.status = 'claimed' AND r.claimed_at <= ? AND {scope}"
            ") ORDER BY fire_at LIMIT ?) RETURNING id, agent_id, kind, number, message, due_at,"
            " fire_at, created_at, chat, route, note, late,"
            " (SELECT platform FROM agents WHERE agents.id = agent_id),"
            " (SELECT user_id FROM agents WHERE agents.id = agent_id)",
            (ms, ms, _ms(late_after), ms, *params, ms - _ms(lease), *params, limit),
        )
        return sorted((_due(r) for r in rows), key=lambda d: (d.fire_at, d.id))

    async def postpone_reminder(self, reminder_id: int, fire_at: datetime, note: str) -> None:
        await self._write(
            "UPDATE reminders SET status = 'pending', claimed_at = NULL, fire_at = ?, note = ?"
            " WHERE id = ? AND status = 'claimed'",
            (to_millis(fire_at), note, reminder_id),
        )

    async def finish_reminder(
        self, reminder_id: int, status: ReminderStatus, now: datetime, note: str = ""
    ) -> None:
        await self._write(
            "UPDATE reminders SET status = ?, sent_at = ?, claimed_at = NULL,"
            " note = CASE WHEN ? = '' THEN note ELSE ? END WHERE id = ? AND status = 'claimed'",
            (status.value, to_millis(now), note, note, reminder_id),
        )

    async def sent_since(self, agent_id: int, since: datetime) -> list[datetime]:
        rows = await self._read(
            "SELECT sent_at FROM reminders WHERE agent_id = ? AND status = 'sent' AND"
            " sent_at >= ? ORDER BY sent_at",
            (agent_id, to_millis(since)),
        )
        return [from_millis(r[0]) for r in rows]

    async def add_checkins(
        self,
        now: datetime,
        silent_from: datetime,
        silent_to: datetime,
        scopes: Sequence[DeliveryScope],
    ) -> int:
        scope, params = _scoped(scopes)
        ms = to_millis(now)
        rows = await self._write(
            "INSERT INTO reminders (agent_id, kind, message, due_at, fire_at, created_at, chat)"
            " SELECT a.id, 'checkin', '', a.last_user_at, ?, ?, 'private' FROM agents a"
            " LEFT JOIN agent_prefs p ON p.agent_id = a.id WHERE a.last_user_at BETWEEN ? AND ?"
            f" AND COALESCE(p.checkins, 1) = 1 AND {scope} ON CONFLICT DO NOTHING RETURNING id",
            (ms, ms, to_millis(silent_from), to_millis(silent_to), *params),
        )
        return len(rows)

    async def next_silence(
        self, after: datetime, scopes: Sequence[DeliveryScope]
    ) -> datetime | None:
        scope, params = _scoped(scopes)
        rows = await self._read(
            "SELECT MIN(a.last_user_at) FROM agents a LEFT JOIN agent_prefs p ON"
            f" p.agent_id = a.id WHERE a.last_user_at > ? AND COALESCE(p.checkins, 1) = 1"
            f" AND {scope}",
            (to_millis(after), *params),
        )
        return None if rows[0][0] is None else from_millis(rows[0][0])

    async def load_prefs(self, key: AgentKey) -> PersonPrefs:
        rows = await self._read(
            "SELECT p.timezone, p.quiet_hours, p.checkins FROM agent_prefs p JOIN agents a ON"
            " a.id = p.agent_id WHERE a.platform = ? AND a.user_id = ?",
            (key.platform, key.user_id),
        )
        if not rows:
            return PersonPrefs()
        zone, quiet, checkins = rows[0]
        return PersonPrefs(
            timezone=_zone(zone),
            quiet_hours=_quiet(quiet),
            quiet_set=quiet is not None,
            checkins=bool(checkins),
        )

    async def save_prefs(self, agent_id: int, prefs: PersonPrefs) -> None:
        quiet = (str(prefs.quiet_hours) if prefs.quiet_hours else "") if prefs.quiet_set else None
        await self._write(
            "INSERT INTO agent_prefs (agent_id, timezone, quiet_hours, checkins) VALUES"
            " (?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET timezone = excluded.timezone,"
            " quiet_hours = excluded.quiet_hours, checkins = excluded.checkins",
            (
                agent_id,
                prefs.timezone.key if prefs.timezone else None,
                quiet,
                int(prefs.checkins),
            ),
        )

    async def reminder_counts(self, since: datetime) -> ReminderCounts:
        rows = await self._read(
            "SELECT (SELECT COUNT(*) FROM reminders WHERE status = 'pending'),"
            " (SELECT COUNT(*) FROM reminders WHERE status = 'sent' AND sent_at >= ?),"
            " (SELECT COUNT(*) FROM reminders WHERE late AND status = 'sent'),"
            " (SELECT COUNT(*) FROM reminders WHERE status = 'failed'),"
            " (SELECT COUNT(*) FROM agent_prefs WHERE timezone IS NOT NULL)",
            (to_millis(since),),
        )
        return ReminderCounts(*(int(v) for v in rows[0]))


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("stored time zone %r is unknown here; using the default", name)
        return None


def _quiet(text: str | None) -> QuietHours | None:
    try:
        return QuietHours.parse(text or "")
    except ValueError:
        log.warning("stored quiet hours %r are not valid; ignoring them", text)
        return None


def _reminder(r: sqlite3.Row) -> Reminder:
    return Reminder(
        number=r[0],
        message=r[1],
        due_at=from_millis(r[2]),
        fire_at=from_millis(r[3]),
        created_at=from_millis(r[4]),
        chat=ChatKind(r[5]),
        status=ReminderStatus(r[6]),
        late=bool(r[7]),
        sent_at=None if r[8] is None else from_millis(r[8]),
        note=r[9],
    )


def _due(r: sqlite3.Row) -> DueReminder:
    return DueReminder(
        id=r[0],
        agent_id=r[1],
        key=AgentKey(r[12], r[13]),
        kind=ReminderKind(r[2]),
        number=r[3],
        message=r[4],
        due_at=from_millis(r[5]),
        fire_at=from_millis(r[6]),
        created_at=from_millis(r[7]),
        chat=ChatKind(r[8]),
        route=r[9],
        note=r[10],
        late=bool(r[11]),
    )


def _conforms(store: SQLiteReminders) -> ReminderStore:  # mypy checks it against the protocol
    return store
