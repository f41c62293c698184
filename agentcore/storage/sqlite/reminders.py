"""``ReminderStore`` on SQLite: reminders, check-ins and each person's settings for them.

Every method is one statement, which SQLite runs atomically on the writer: a claim is one
``UPDATE ... RETURNING``, so a due reminder is claimed by exactly one caller however many ask
at once (and the instance lock keeps one bot process per file).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agentcore.clock import from_millis, to_millis
from agentcore.schedule.model import (
    DeliveryScope,
    DueReminder,
    NewReminder,
    PersonPrefs,
    Reminder,
    ReminderCounts,
    ReminderStatus,
)
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.types import AgentKey

_WAITING = "('pending', 'claimed')"
# "reminders r CROSS JOIN agents a" makes SQLite walk the reminders first, in due order along
# their partial index (reminders_due, reminders_claimed), and stop at the first match; left to
# itself it may start from the agents and sort every pending reminder on each call.
_REMINDERS_FIRST = "reminders r CROSS JOIN agents a"

_NEXT_FIRE = """SELECT MIN(t) AS next FROM (
    SELECT * FROM (SELECT r.fire_at AS t FROM {walk} WHERE a.id = r.agent_id
        AND r.status = 'pending' AND {scope} ORDER BY r.fire_at LIMIT 1)
    UNION ALL
    SELECT * FROM (SELECT r.claimed_at + :lease AS t FROM {walk} WHERE a.id = r.agent_id
        AND r.status = 'claimed' AND {scope} ORDER BY r.claimed_at LIMIT 1))"""

# Due reminders, and claims whose lease ran out (their process died), earliest first.
_CLAIM = f"""UPDATE reminders SET status = 'claimed', claimed_at = :now,
    late = late OR :now - fire_at > :late_after
WHERE id IN (SELECT id FROM (
    SELECT r.id, r.fire_at FROM {{walk}} WHERE a.id = r.agent_id
        AND r.status = 'pending' AND r.fire_at <= :now AND {{scope}}
    UNION ALL
    SELECT r.id, r.fire_at FROM {{walk}} WHERE a.id = r.agent_id
        AND r.status = 'claimed' AND r.claimed_at <= :expired AND {{scope}})
    ORDER BY fire_at LIMIT :limit)
RETURNING {rows.DUE_COLUMNS}"""

_ADD = f"""INSERT INTO reminders (agent_id, number, kind, message, due_at, fire_at, created_at,
    chat, route)
SELECT :agent, COALESCE((SELECT MAX(number) FROM reminders WHERE agent_id = :agent), 0) + 1,
    'reminder', :message, :due, :due, :created, :chat, :route
WHERE (SELECT COUNT(*) FROM reminders WHERE agent_id = :agent AND status IN {_WAITING}) < :cap
RETURNING number"""

# A check-in for each person in scope silent since a time in the window, once per silence
# (checkins_once), unless they turned check-ins off.
_ADD_CHECKINS = """INSERT INTO reminders (agent_id, kind, message, due_at, fire_at, created_at,
    chat)
SELECT a.id, 'checkin', '', a.last_user_at, :now, :now, 'private'
FROM agents a LEFT JOIN agent_prefs p ON p.agent_id = a.id
WHERE a.last_user_at BETWEEN :silent_from AND :silent_to AND COALESCE(p.checkins, 1) = 1
    AND {scope}
ON CONFLICT DO NOTHING RETURNING id"""

_NEXT_SILENCE = """SELECT MIN(a.last_user_at) AS next
FROM agents a LEFT JOIN agent_prefs p ON p.agent_id = a.id
WHERE a.last_user_at > :after AND COALESCE(p.checkins, 1) = 1 AND {scope}"""


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _scoped(scopes: Sequence[DeliveryScope]) -> tuple[str, dict[str, Any]]:
    """SQL over ``a`` (agents) matching any of ``scopes``, and its named parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for n, scope in enumerate(scopes):
        clauses.append(f"(a.platform = :p{n} AND (:u{n} IS NULL OR a.user_id = :u{n}))")
        params |= {f"p{n}": scope.platform, f"u{n}": scope.user_id}
    return "(" + " OR ".join(clauses or ["0"]) + ")", params


class ReminderRows(Part):
    async def add_reminder(self, new: NewReminder, max_pending: int) -> int | None:
        added = await self._db.execute(
            _ADD,
            {
                "agent": new.agent_id,
                "message": new.message,
                "due": to_millis(new.due_at),
                "created": to_millis(new.created_at),
                "chat": new.chat.value,
                "route": new.route,
                "cap": max_pending,
            },
        )
        return int(added[0]["number"]) if added else None

    async def list_reminders(self, agent_id: int, *, pending_only: bool) -> list[Reminder]:
        waiting = f" AND status IN {_WAITING}" if pending_only else ""
        found = await self._db.fetch(
            f"SELECT {rows.REMINDER_COLUMNS} FROM reminders WHERE agent_id = ?"
            f" AND kind = 'reminder'{waiting} ORDER BY fire_at, number",
            (agent_id,),
        )
        return [rows.reminder(r) for r in found]

    async def cancel_reminder(self, agent_id: int, number: int) -> bool:
        cancelled = await self._db.execute(
            "UPDATE reminders SET status = 'cancelled' WHERE agent_id = ? AND number = ?"
            " AND status = 'pending' RETURNING id",
            (agent_id, number),
        )
        return bool(cancelled)

    async def next_fire_at(
        self, scopes: Sequence[DeliveryScope], lease: timedelta
    ) -> datetime | None:
        scope, params = _scoped(scopes)
        [found] = await self._db.fetch(
            _NEXT_FIRE.format(walk=_REMINDERS_FIRST, scope=scope), params | {"lease": _ms(lease)}
        )
        return rows.maybe_time(found["next"])

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
        claimed = await self._db.execute(
            _CLAIM.format(walk=_REMINDERS_FIRST, scope=scope),
            params
            | {
                "now": ms,
                "late_after": _ms(late_after),
                "expired": ms - _ms(lease),
                "limit": limit,
            },
        )
        # RETURNING order is unspecified.
        return sorted((rows.due_reminder(r) for r in claimed), key=lambda d: (d.fire_at, d.id))

    async def postpone_reminder(self, reminder_id: int, fire_at: datetime, note: str) -> None:
        await self._db.execute(
            "UPDATE reminders SET status = 'pending', claimed_at = NULL, fire_at = ?, note = ?"
            " WHERE id = ? AND status = 'claimed'",
            (to_millis(fire_at), note, reminder_id),
        )

    async def finish_reminder(
        self, reminder_id: int, status: ReminderStatus, now: datetime, note: str = ""
    ) -> None:
        await self._db.execute(
            "UPDATE reminders SET status = :status, sent_at = :now, claimed_at = NULL,"
            " note = CASE WHEN :note = '' THEN note ELSE :note END"
            " WHERE id = :id AND status = 'claimed'",
            {"status": status.value, "now": to_millis(now), "note": note, "id": reminder_id},
        )

    async def sent_since(self, agent_id: int, since: datetime) -> list[datetime]:
        found = await self._db.fetch(
            "SELECT sent_at FROM reminders WHERE agent_id = ? AND status = 'sent'"
            " AND sent_at >= ? ORDER BY sent_at",
            (agent_id, to_millis(since)),
        )
        return [from_millis(r["sent_at"]) for r in found]

    async def add_checkins(
        self,
        now: datetime,
        silent_from: datetime,
        silent_to: datetime,
        scopes: Sequence[DeliveryScope],
    ) -> int:
        scope, params = _scoped(scopes)
        added = await self._db.execute(
            _ADD_CHECKINS.format(scope=scope),
            params
            | {
                "now": to_millis(now),
                "silent_from": to_millis(silent_from),
                "silent_to": to_millis(silent_to),
            },
        )
        return len(added)

    async def next_silence(
        self, after: datetime, scopes: Sequence[DeliveryScope]
    ) -> datetime | None:
        scope, params = _scoped(scopes)
        [found] = await self._db.fetch(
            _NEXT_SILENCE.format(scope=scope), params | {"after": to_millis(after)}
        )
        return rows.maybe_time(found["next"])

    async def load_prefs(self, key: AgentKey) -> PersonPrefs:
        found = await self._db.fetch(
            f"SELECT {rows.PREFS_COLUMNS} FROM agent_prefs p JOIN agents a ON a.id = p.agent_id"
            " WHERE a.platform = ? AND a.user_id = ?",
            (key.platform, key.user_id),
        )
        return rows.prefs(found[0] if found else None)

    async def save_prefs(self, agent_id: int, prefs: PersonPrefs) -> None:
        zone, quiet, checkins = rows.prefs_values(prefs)
        await self._db.execute(
            "INSERT INTO agent_prefs (agent_id, timezone, quiet_hours, checkins)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET"
            " timezone = excluded.timezone, quiet_hours = excluded.quiet_hours,"
            " checkins = excluded.checkins",
            (agent_id, zone, quiet, int(checkins)),
        )

    async def reminder_counts(self, since: datetime) -> ReminderCounts:
        [found] = await self._db.fetch(rows.COUNTS_SELECT.format(since="?"), (to_millis(since),))
        return rows.reminder_counts(found)
