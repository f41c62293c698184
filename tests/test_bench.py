"""The benchmarks stay runnable: a LoCoMo recall run on one conversation, with a floor, and a
tiny search-latency run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import dataset, prompt_cache, search_latency
from bench.locomo import (
    DEFAULT_DATA,
    SCORED,
    load_conversations,
    plain_fts_baseline,
    run_file,
    summary,
)


@pytest.mark.skipif(
    not DEFAULT_DATA.is_file(),
    reason=f"LoCoMo data not found at {DEFAULT_DATA} (read by path from ../shared/data; "
    "it is never copied into the repository)",
)
async def test_locomo_recall_floor_on_one_conversation() -> None:
    report = await run_file(DEFAULT_DATA, conversations=1)
    figures = summary(report)
    assert report.count(SCORED) >= 100
    # The engine gets about 75 / 87 on this conversation.
    assert figures["r@10"] >= 70.0
    assert figures["r@50"] >= 82.0
    assert figures["r@5"] <= figures["r@10"] <= figures["r@25"] <= figures["r@50"]
    baseline = summary(plain_fts_baseline(load_conversations(DEFAULT_DATA)[:1]))
    assert baseline["r@10"] + 5 <= figures["r@10"]  # the engine clearly beats plain FTS5


def test_search_latency_smoke(tmp_path: Path) -> None:
    path = tmp_path / "latency.db"
    dataset.build(path, agents=10, messages=600, workers=0)
    figures = asyncio.run(search_latency.measure(path, agents=10, queries=20, words=5, seed=1))
    assert figures.queries == 20
    assert figures.found == 1.0  # every query is made of words its agent wrote
    assert 0 < figures.median_ms <= figures.p95_ms


def test_the_prompt_layout_repeats_the_previous_request() -> None:
    """Over 40 turns (4 memory edits, folds in a small window) the bot's prompts repeat the
    previous request far more than the earlier layout's."""
    lines = prompt_cache.script(40)
    bot = asyncio.run(prompt_cache.converse("bot", lines, 5000))
    classic = asyncio.run(prompt_cache.converse("classic", lines, 5000))
    assert sum(t.folded for t in bot) >= 1
    assert prompt_cache.reuse(bot) >= 0.85
    assert prompt_cache.reuse(classic) <= 0.5
