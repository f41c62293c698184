"""``OpsStore`` on PostgreSQL: startup runs, model calls, the operator audit log, statistics."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from agentcore.clock import to_millis
from agentcore.records import AuditEntry, LLMCallRecord, StartupRun, StoreStats
from agentcore.storage import rows
from agentcore.storage.postgres.connection import Conn, Database, Part
from agentcore.storage.protocols import StorageError


class OpsRows(Part):
    async def record_startup(self, run: StartupRun) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "INSERT INTO startup_runs (started_at, total_ms, rss_mb, phases) "
                "VALUES ($1, $2, $3, $4)",
                to_millis(run.started_at),
                run.total_ms,
                run.rss_mb,
                json.dumps(run.phases),
            )
        )

    async def recent_startups(self, limit: int) -> list[StartupRun]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT id, started_at, total_ms, rss_mb, phases FROM startup_runs "
                "ORDER BY id DESC LIMIT $1",
                limit,
            )
        )
        return [rows.startup_run(r) for r in found]

    async def record_llm_call(self, call: LLMCallRecord) -> None:
        # The daily totals (usage_days) follow by trigger, in the same statement.
        await self._db.statement(
            lambda conn: conn.execute(
                "INSERT INTO llm_calls (agent_id, created_at, latency_ms, ok, prompt_tokens,"
                " completion_tokens, cached_tokens, estimated, purpose, model, day)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                call.agent_id,
                to_millis(call.created_at),
                call.latency_ms,
                call.ok,
                call.prompt_tokens,
                call.completion_tokens,
                call.cached_tokens,
                call.estimated,
                call.purpose.value,
                call.model,
                rows.counted_day(call),
            )
        )

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._db.statement(
            lambda conn: conn.execute(
                "INSERT INTO audit_log (actor, verb, target, detail, created_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                entry.actor,
                entry.verb,
                entry.target,
                entry.detail,
                to_millis(entry.created_at),
            )
        )

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        found = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT id, actor, verb, target, detail, created_at FROM audit_log "
                "ORDER BY id DESC LIMIT $1",
                limit,
            )
        )
        return [rows.audit_entry(r) for r in found]

    async def stats(self, since: datetime) -> StoreStats:
        return await self._db.read(lambda conn: _stats(conn, to_millis(since)))

    async def backup(self, destination: Path) -> None:
        raise StorageError(
            "backups of a PostgreSQL database are made with its own tools (pg_dump), "
            f"not by the bot: nothing was written to {destination}"
        )


async def _stats(conn: Conn, since_ms: int) -> StoreStats:
    counts = await conn.fetchrow(
        "SELECT count(*) AS agents, COALESCE(sum(message_count), 0) AS messages, "
        "COALESCE(sum(passage_count), 0) AS passages, pg_database_size(current_database()) "
        "AS size_bytes FROM agents"
    )
    calls = await conn.fetch(
        "SELECT latency_ms, prompt_tokens + completion_tokens AS tokens FROM llm_calls "
        "WHERE created_at >= $1",
        since_ms,
    )
    assert counts is not None
    return StoreStats(
        agents=counts["agents"],
        messages=int(counts["messages"]),
        passages=int(counts["passages"]),
        size_bytes=counts["size_bytes"],
        llm_calls_today=len(calls),
        tokens_today=sum(r["tokens"] for r in calls),
        llm_latencies_ms=tuple(r["latency_ms"] for r in calls),
    )


async def pace(db: Database, name: str, interval: float) -> None:
    """``Storage.pace``: each caller books the next free moment (``interval`` after the last one
    booked, or now) in one statement, by the server's clock (processes may run on machines
    whose clocks differ), then waits for it; nothing is held while waiting, so a process that
    stops meanwhile holds nobody up beyond its own moment."""
    waited = await db.statement(
        lambda conn: conn.fetchval(
            "WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS at) "
            "INSERT INTO pacing AS p (name, last_at) SELECT $1, at FROM now "
            "ON CONFLICT (name) DO UPDATE SET last_at = greatest(p.last_at + $2, "
            "(SELECT at FROM now)) RETURNING last_at - (SELECT at FROM now)",
            name,
            interval,
        )
    )
    if waited > 0:
        await asyncio.sleep(waited)
