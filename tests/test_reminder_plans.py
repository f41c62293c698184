"""The scheduler's statements walk the partial indexes in time order on both backends.

With 10,000 waiting reminders the scheduler asks "what is due next" and claims what is due
many times a day; each must read the few rows it needs along ``reminders_due`` /
``reminders_claimed``, not start from the agents and sort every pending reminder (what each
planner does when left to itself with a plain join). These tests read the plans each backend
chooses for its own statements (the modules' private SQL), on a database of that size.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import asyncpg

from agentcore.clock import to_millis
from agentcore.schedule.model import DeliveryScope
from agentcore.storage.postgres import reminders as pg
from agentcore.storage.sqlite import reminders as lite
from agentcore.storage.sqlite.migrate import load_migrations

PEOPLE, PENDING = 1000, 10_000
T0 = datetime(2025, 3, 1, tzinfo=UTC)
NOW = to_millis(T0 + timedelta(minutes=30))
LEASE_MS, LATE_MS, LIMIT = 600_000, 120_000, 32


def _reminder_rows() -> list[tuple[int, int, int]]:
    """(agent, number, due) of one reminder a minute from T0, spread over everyone."""
    return [(1 + n % PEOPLE, n, to_millis(T0) + n * 60_000) for n in range(1, PENDING + 1)]


def test_sqlite_walks_the_due_index() -> None:
    db = sqlite3.connect(":memory:")
    for migration in load_migrations():
        for statement in migration.statements:
            db.execute(statement)
    db.executemany(
        "INSERT INTO agents (platform, user_id, created_at) VALUES ('telegram', ?, 0)",
        [(str(i),) for i in range(PEOPLE)],
    )
    db.executemany(
        "INSERT INTO reminders (agent_id, number, kind, message, due_at, fire_at, created_at,"
        " chat) VALUES (?, ?, 'reminder', 'x', ?3, ?3, 0, 'private')",
        _reminder_rows(),
    )
    db.execute("ANALYZE")
    scope, params = lite._scoped([DeliveryScope("telegram")])
    walk = {"walk": lite._REMINDERS_FIRST, "scope": scope}
    claim = {"now": NOW, "late_after": LATE_MS, "expired": NOW - LEASE_MS, "limit": LIMIT}
    for sql, values in (
        (lite._NEXT_FIRE.format(**walk), params | {"lease": LEASE_MS}),
        (lite._CLAIM.format(**walk), params | claim),
    ):
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, values)]
        assert any("USING INDEX reminders_due" in step for step in plan), plan
        assert any("USING INDEX reminders_claimed" in step for step in plan), plan
        assert not any("reminders_by_agent" in step or "SCAN a" in step for step in plan), plan


async def test_postgres_walks_the_due_index(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.executemany(
            "INSERT INTO agents (platform, user_id, created_at) VALUES ('telegram', $1, 0)",
            [(str(i),) for i in range(PEOPLE)],
        )
        await conn.executemany(
            "INSERT INTO reminders (agent_id, number, kind, message, due_at, fire_at,"
            " created_at, chat) VALUES ($1, $2, 'reminder', 'x', $3, $3, 0, 'private')",
            _reminder_rows(),
        )
        await conn.execute("ANALYZE agents, reminders")
        scopes = (["telegram"], [None])
        # asyncpg prepares every statement: after a few runs PostgreSQL plans it once for any
        # values (generic), so both kinds of plan must walk the index.
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            for sql, values in (
                (pg._NEXT_FIRE, (*scopes, LEASE_MS)),
                (pg._CLAIM, (*scopes, NOW, LATE_MS, LIMIT, NOW - LEASE_MS)),
            ):
                plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *values))
                assert "Index Scan using reminders_due" in plan, plan
                assert "Index Scan using reminders_claimed" in plan, plan
                assert "reminders_by_agent" not in plan and "Seq Scan" not in plan, plan
    finally:
        await conn.close()
