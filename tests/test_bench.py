"""The benchmarks stay runnable: a LoCoMo recall run on one conversation, with a floor, on
every backend (which must find the same), and a tiny search-latency run."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from agentcore.storage.protocols import Storage
from bench import dataset, pg, prompt_cache, search_latency
from bench.locomo import (
    DEFAULT_DATA,
    SCORED,
    load_conversations,
    plain_fts_baseline,
    run,
    summary,
)
from tests import postgres
from tests.conftest import open_backend

needs_locomo = pytest.mark.skipif(
    not DEFAULT_DATA.is_file(),
    reason=f"LoCoMo data not found at {DEFAULT_DATA} (read by path from ../shared/data; "
    "it is never copied into the repository)",
)


@needs_locomo
async def test_locomo_recall_floor_on_one_conversation(any_storage: Storage) -> None:
    report = await run(load_conversations(DEFAULT_DATA)[:1], any_storage)
    figures = summary(report)
    assert report.count(SCORED) >= 100
    # The engine gets about 75 / 87 on this conversation.
    assert figures["r@10"] >= 70.0
    assert figures["r@50"] >= 82.0
    assert figures["r@5"] <= figures["r@10"] <= figures["r@25"] <= figures["r@50"]
    baseline = summary(plain_fts_baseline(load_conversations(DEFAULT_DATA)[:1]))
    assert baseline["r@10"] + 5 <= figures["r@10"]  # the engine clearly beats plain FTS5


@needs_locomo
async def test_locomo_finds_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """Search parity: the same analysed terms and the same ranker give every question the same
    recall on both backends."""
    conversation = load_conversations(DEFAULT_DATA)[:1]
    recalls = []
    for where in (str(tmp_path / "parity.db"), postgres_url):
        storage = await open_backend(where)
        try:
            report = await run(conversation, storage)
        finally:
            await storage.close()
        recalls.append([o.recall for o in report.outcomes])
    assert len(recalls[0]) >= 100
    assert recalls[0] == recalls[1]


def test_search_latency_smoke(tmp_path: Path) -> None:
    path = tmp_path / "latency.db"
    dataset.build(path, agents=10, messages=600, workers=0)
    figures = asyncio.run(
        search_latency.measure(path, agents=10, queries=20, words=5, seed=1, postgres_url=None)
    )
    assert figures.queries == 20
    assert figures.found == 1.0  # every query is made of words its agent wrote
    assert 0 < figures.median_ms <= figures.p95_ms


def test_the_postgres_copy_of_a_history_with_vectors_holds_the_same_vectors(
    tmp_path: Path, postgres_server: str
) -> None:
    """The hybrid figures of both backends are of the same data: every vector, row for row."""
    path = tmp_path / "latency.db"
    dataset.build(path, agents=10, messages=600, workers=0)
    with_vectors = search_latency.with_vectors(path)
    url = pg.history_database(postgres_server, with_vectors)
    try:
        with sqlite3.connect(with_vectors) as db:
            vectors = "SELECT agent_id, message_id, model_id, vector FROM message_vectors"
            expected = sorted(db.execute(vectors).fetchall())
        copied = sorted(tuple(r) for r in asyncio.run(_fetch(url, vectors)))
        assert len(expected) > 300 and copied == expected
        figures = asyncio.run(search_latency.measure(with_vectors, 10, 20, 5, 1, url, hybrid=True))
        assert figures.queries == 20 and figures.found == 1.0
    finally:
        asyncio.run(postgres.drop_database(postgres_server, url))


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def test_the_prompt_layout_repeats_the_previous_request() -> None:
    """Over 40 turns (4 memory edits, folds in a small window) the bot's prompts repeat the
    previous request far more than the earlier layout's."""
    lines = prompt_cache.script(40)
    bot = asyncio.run(prompt_cache.converse("bot", lines, 5000))
    classic = asyncio.run(prompt_cache.converse("classic", lines, 5000))
    assert sum(t.folded for t in bot) >= 1
    # Short: the first request and the fold's are uncached, and the tool schemas (cached by
    # both layouts) are a large share of a small window; the 200-turn run reaches 90 %.
    assert prompt_cache.reuse(bot) >= 0.8
    assert prompt_cache.reuse(classic) <= prompt_cache.reuse(bot) - 0.2
