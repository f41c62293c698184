"""``ReminderStore`` on PostgreSQL: reminders, check-ins and each person's settings for them.

Several bot processes may share the database, each with its own scheduler. A claim is one
statement that locks the rows it takes (``FOR UPDATE ... SKIP LOCKED``: a row another process
is claiming right now is passed over, not waited for) and marks them claimed before it
commits, so every due reminder is claimed by exactly one process. The scheduler's questions
walk the partial indexes ``reminders_due`` and ``reminders_claimed`` in time order and stop at
the rows they need, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

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
from agentcore.storage.postgres.connection import Conn, Part, texts
from agentcore.types import AgentKey

_WAITING = "('pending', 'claimed')"
# Agent ``a`` is within the scopes $1 (platforms) and $2 (a user of it, or NULL for all); one
# statement text for any number of scopes, so its plan is prepared once.
_SCOPE = """EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS s(platform, user_id)
    WHERE s.platform = a.platform AND (s.user_id IS NULL OR s.user_id = a.user_id))"""
# Reminder ``r``'s person is within the scopes. A scalar subquery, checked row by row as the
# reminders are walked in time order along a partial index, stopping at the first rows that
# match: as a join, the planner starts from the agents and sorts every pending reminder of
# everyone in scope on each call (as SQLite did without its CROSS JOIN).
_R_IN_SCOPE = f"(SELECT true FROM agents a WHERE a.id = r.agent_id AND {_SCOPE})"

_NEXT_FIRE = f"""SELECT LEAST(
    (SELECT r.fire_at FROM reminders r WHERE r.status = 'pending' AND {_R_IN_SCOPE}
     ORDER BY r.fire_at LIMIT 1),
    (SELECT r.claimed_at + $3 FROM reminders r WHERE r.status = 'claimed' AND {_R_IN_SCOPE}
     ORDER BY r.claimed_at LIMIT 1))"""

# Due reminders ($3: now) and claims whose lease ran out ($6: claimed before then; their process
# died), earliest first, at most $5. Each part locks the rows it reads in index order and skips
# rows another process has locked; a row another process claimed meanwhile is re-checked once
# locked and no longer matches. MATERIALIZED: each part runs once, as written.
_CLAIM = f"""WITH due AS MATERIALIZED (
    SELECT r.id, r.fire_at FROM reminders r
    WHERE r.status = 'pending' AND r.fire_at <= $3 AND {_R_IN_SCOPE}
    ORDER BY r.fire_at LIMIT $5 FOR UPDATE SKIP LOCKED),
expired AS MATERIALIZED (
    SELECT r.id, r.fire_at FROM reminders r
    WHERE r.status = 'claimed' AND r.claimed_at <= $6 AND {_R_IN_SCOPE}
    ORDER BY r.claimed_at LIMIT $5 FOR UPDATE SKIP LOCKED),
picked AS (
    SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) c
    ORDER BY fire_at LIMIT $5)
UPDATE reminders r SET status = 'claimed', claimed_at = $3, late = r.late OR $3 - r.fire_at > $4
FROM picked, agents a WHERE r.id = picked.id AND a.id = r.agent_id
RETURNING r.id, r.agent_id, r.kind, r.number, r.message, r.due_at, r.fire_at, r.created_at,
    r.chat, r.route, r.note, r.late, a.platform, a.user_id"""

_ADD = f"""INSERT INTO reminders (agent_id, number, kind, message, due_at, fire_at, created_at,
    chat, route)
SELECT $1, COALESCE((SELECT max(number) FROM reminders WHERE agent_id = $1), 0) + 1,
    'reminder', $2, $3, $3, $4, $5, $6
WHERE (SELECT count(*) FROM reminders WHERE agent_id = $1 AND status IN {_WAITING}) < $7
RETURNING number"""

# A check-in for each person in scope silent since a time in the window, once per silence
# (checkins_once), unless they turned check-ins off.
_ADD_CHECKINS = f"""INSERT INTO reminders (agent_id, kind, message, due_at, fire_at, created_at,
    chat)
SELECT a.id, 'checkin', '', a.last_user_at, $3, $3, 'private'
FROM agents a LEFT JOIN agent_prefs p ON p.agent_id = a.id
WHERE a.last_user_at BETWEEN $4 AND $5 AND COALESCE(p.checkins, true) AND {_SCOPE}
ON CONFLICT DO NOTHING RETURNING id"""

_NEXT_SILENCE = f"""SELECT min(a.last_user_at)
FROM agents a LEFT JOIN agent_prefs p ON p.agent_id = a.id
WHERE a.last_user_at > $3 AND COALESCE(p.checkins, true) AND {_SCOPE}"""


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _scopes(scopes: Sequence[DeliveryScope]) -> tuple[list[str | None], list[str | None]]:
    """The parameters $1 and $2 of ``_SCOPE``."""
    return texts([s.platform for s in scopes]), texts([s.user_id for s in scopes])


class ReminderRows(Part):
    async def add_reminder(self, new: NewReminder, max_pending: int) -> int | None:
        return await self._db.write(lambda conn: _add(conn, new, max_pending))

    async def list_reminders(self, agent_id: int, *, pending_only: bool) -> list[Reminder]:
        waiting = f" AND status IN {_WAITING}" if pending_only else ""
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {rows.REMINDER_COLUMNS} FROM reminders WHERE agent_id = $1"
                f" AND kind = 'reminder'{waiting} ORDER BY fire_at, number",
                agent_id,
            )
        )
        return [rows.reminder(r) for r in found]

    async def cancel_reminder(self, agent_id: int, number: int) -> bool:
        cancelled = await self._db.statement(
            lambda conn: conn.fetchval(
                "UPDATE reminders SET status = 'cancelled' WHERE agent_id = $1 AND number = $2"
                " AND status = 'pending' RETURNING id",
                agent_id,
                number,
            )
        )
        return cancelled is not None

    async def next_fire_at(
        self, scopes: Sequence[DeliveryScope], lease: timedelta
    ) -> datetime | None:
        at = await self._db.read(
            lambda conn: conn.fetchval(_NEXT_FIRE, *_scopes(scopes), _ms(lease))
        )
        return rows.maybe_time(at)

    async def claim_due(
        self,
        now: datetime,
        scopes: Sequence[DeliveryScope],
        limit: int,
        lease: timedelta,
        late_after: timedelta,
    ) -> list[DueReminder]:
        ms = to_millis(now)
        claimed = await self._db.statement(
            lambda conn: conn.fetch(
                _CLAIM, *_scopes(scopes), ms, _ms(late_after), limit, ms - _ms(lease)
            )
        )
        # RETURNING order is unspecified.
        return sorted((rows.due_reminder(r) for r in claimed), key=lambda d: (d.fire_at, d.id))

    async def postpone_reminder(self, reminder_id: int, fire_at: datetime, note: str) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE reminders SET status = 'pending', claimed_at = NULL, fire_at = $1,"
                " note = $2 WHERE id = $3 AND status = 'claimed'",
                to_millis(fire_at),
                note,
                reminder_id,
            )
        )

    async def finish_reminder(
        self, reminder_id: int, status: ReminderStatus, now: datetime, note: str = ""
    ) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "UPDATE reminders SET status = $1, sent_at = $2, claimed_at = NULL,"
                " note = CASE WHEN $3 = '' THEN note ELSE $3 END"
                " WHERE id = $4 AND status = 'claimed'",
                status.value,
                to_millis(now),
                note,
                reminder_id,
            )
        )

    async def sent_since(self, agent_id: int, since: datetime) -> list[datetime]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT sent_at FROM reminders WHERE agent_id = $1 AND status = 'sent'"
                " AND sent_at >= $2 ORDER BY sent_at",
                agent_id,
                to_millis(since),
            )
        )
        return [from_millis(r["sent_at"]) for r in found]

    async def add_checkins(
        self,
        now: datetime,
        silent_from: datetime,
        silent_to: datetime,
        scopes: Sequence[DeliveryScope],
    ) -> int:
        added = await self._db.statement(
            lambda conn: conn.fetch(
                _ADD_CHECKINS,
                *_scopes(scopes),
                to_millis(now),
                to_millis(silent_from),
                to_millis(silent_to),
            )
        )
        return len(added)

    async def next_silence(
        self, after: datetime, scopes: Sequence[DeliveryScope]
    ) -> datetime | None:
        at = await self._db.read(
            lambda conn: conn.fetchval(_NEXT_SILENCE, *_scopes(scopes), to_millis(after))
        )
        return rows.maybe_time(at)

    async def load_prefs(self, key: AgentKey) -> PersonPrefs:
        found = await self._db.read(
            lambda conn: conn.fetchrow(
                f"SELECT {rows.PREFS_COLUMNS} FROM agent_prefs p JOIN agents a"
                " ON a.id = p.agent_id WHERE a.platform = $1 AND a.user_id = $2",
                key.platform,
                key.user_id,
            )
        )
        return rows.prefs(found)

    async def save_prefs(self, agent_id: int, prefs: PersonPrefs) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "INSERT INTO agent_prefs (agent_id, timezone, quiet_hours, checkins)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id) DO UPDATE SET"
                " timezone = excluded.timezone, quiet_hours = excluded.quiet_hours,"
                " checkins = excluded.checkins",
                agent_id,
                *rows.prefs_values(prefs),
            )
        )

    async def reminder_counts(self, since: datetime) -> ReminderCounts:
        found = await self._db.read(
            lambda conn: conn.fetchrow(rows.COUNTS_SELECT.format(since="$1"), to_millis(since))
        )
        assert found is not None  # one row of counts, always
        return rows.reminder_counts(found)


async def _add(conn: Conn, new: NewReminder, max_pending: int) -> int | None:
    """The next number and the cap are read in a statement that starts once this person's row
    is locked, so two adds for one person (from any process) see each other: no number twice,
    no burst past the cap. (NO KEY: it does not hold up rows that only refer to the agent.)"""
    await conn.execute("SELECT 1 FROM agents WHERE id = $1 FOR NO KEY UPDATE", new.agent_id)
    number: int | None = await conn.fetchval(
        _ADD,
        new.agent_id,
        new.message,
        to_millis(new.due_at),
        to_millis(new.created_at),
        new.chat.value,
        new.route,
        max_pending,
    )
    return number
