"""``UsageStore`` on PostgreSQL: daily model usage, which the database adds up as calls are
recorded (the ``llm_calls_counted`` trigger of migration 0005)."""

from __future__ import annotations

from datetime import date

from agentcore.records import PersonUsage, TokensSpent, UsageDay
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Part
from agentcore.storage.rows import EVERYONE, USAGE_COLUMNS


class UsageRows(Part):
    async def usage(self, agent_id: int | None, since: date) -> list[UsageDay]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                f"SELECT {USAGE_COLUMNS} FROM usage_days u WHERE u.agent_id = $1 AND u.day >= $2 "
                "ORDER BY u.day, u.model",
                EVERYONE if agent_id is None else agent_id,
                since,
            )
        )
        return [rows.usage_day(r) for r in found]

    async def tokens_spent(self, agent_id: int | None, day: date) -> TokensSpent:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT agent_id, sum(prompt_tokens + completion_tokens) AS tokens "
                "FROM usage_days WHERE agent_id IN ($1, $2) AND day = $3 GROUP BY agent_id",
                agent_id,
                EVERYONE,
                day,
            )
        )
        return rows.tokens_spent(found, agent_id)

    async def usage_by_person(self, since: date, limit: int) -> list[PersonUsage]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "WITH top AS (SELECT agent_id, sum(prompt_tokens + completion_tokens) AS tokens "
                "FROM usage_days WHERE day >= $1 AND agent_id <> $2 GROUP BY agent_id "
                "ORDER BY tokens DESC, agent_id LIMIT $3) "
                f"SELECT a.platform, a.user_id, a.display_name, u.agent_id, {USAGE_COLUMNS} "
                "FROM top JOIN usage_days u ON u.agent_id = top.agent_id AND u.day >= $1 "
                "JOIN agents a ON a.id = top.agent_id "
                "ORDER BY top.tokens DESC, top.agent_id, u.day, u.model",
                since,
                EVERYONE,
                limit,
            )
        )
        return rows.person_usage(found)
