"""``OpsStore`` on SQLite: startup runs, model calls, the operator audit log, statistics."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path

import aiosqlite

from agentcore.clock import to_millis
from agentcore.records import AuditEntry, LLMCallRecord, StartupRun, StoreStats
from agentcore.storage import rows
from agentcore.storage.sqlite.connection import Part
from agentcore.storage.sqlite.sql import all_rows, one_row


class OpsRows(Part):
    async def record_startup(self, run: StartupRun) -> None:
        params = (to_millis(run.started_at), run.total_ms, run.rss_mb, json.dumps(run.phases))
        await self._db.execute(
            "INSERT INTO startup_runs (started_at, total_ms, rss_mb, phases) VALUES (?, ?, ?, ?)",
            params,
        )

    async def recent_startups(self, limit: int) -> list[StartupRun]:
        found = await self._db.fetch(
            "SELECT id, started_at, total_ms, rss_mb, phases FROM startup_runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [rows.startup_run(r) for r in found]

    async def record_llm_call(self, call: LLMCallRecord) -> None:
        # The daily totals (usage_days) follow by trigger, in the same statement.
        params = (
            call.agent_id,
            to_millis(call.created_at),
            call.latency_ms,
            int(call.ok),
            call.prompt_tokens,
            call.completion_tokens,
            call.cached_tokens,
            int(call.estimated),
            call.purpose.value,
            call.model,
            rows.counted_day(call).isoformat(),
        )
        await self._db.execute(
            "INSERT INTO llm_calls (agent_id, created_at, latency_ms, ok, prompt_tokens,"
            " completion_tokens, cached_tokens, estimated, purpose, model, day)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params,
        )

    async def add_audit(self, entry: AuditEntry) -> None:
        params = (entry.actor, entry.verb, entry.target, entry.detail, to_millis(entry.created_at))
        await self._db.execute(
            "INSERT INTO audit_log (actor, verb, target, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            params,
        )

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        found = await self._db.fetch(
            "SELECT id, actor, verb, target, detail, created_at FROM audit_log "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [rows.audit_entry(r) for r in found]

    async def stats(self, since: datetime) -> StoreStats:
        return await self._db.read(lambda conn: _stats(conn, to_millis(since), self._db.path))

    async def backup(self, destination: Path) -> None:
        await self._db.backup(destination)


async def _stats(conn: aiosqlite.Connection, since_ms: int, path: str) -> StoreStats:
    counts = await one_row(
        conn,
        "SELECT COUNT(*) AS agents, COALESCE(SUM(message_count), 0) AS messages, "
        "COALESCE(SUM(passage_count), 0) AS passages FROM agents",
    )
    assert counts is not None
    calls = await all_rows(
        conn,
        "SELECT latency_ms, prompt_tokens + completion_tokens AS tokens FROM llm_calls "
        "WHERE created_at >= ?",
        (since_ms,),
    )
    return StoreStats(
        agents=counts["agents"],
        messages=counts["messages"],
        passages=counts["passages"],
        size_bytes=_file_size(path),
        llm_calls_today=len(calls),
        tokens_today=sum(r["tokens"] for r in calls),
        llm_latencies_ms=tuple(r["latency_ms"] for r in calls),
    )


def _file_size(path: str) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.path.getsize(path + suffix)
    return total
