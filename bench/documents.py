"""Documents: reading a 300-page PDF into archival memory, and paging back through it.

A PDF of N pages (``bench.pdfgen``: one distinctive fact per page amid common filler) is read by
the bot's own ``DocumentReader`` into a fresh SQLite database: pages per second, and the
process's RSS sampled while it reads (and before, as the baseline). Then, for 100 random pages,
the fact's question (town, trade, colour, object; never the answer) is searched with
``archival_memory_search``'s storage call: is the right page first (R@1), among the first five
(R@5), and how long does a search take (median, p95). Baseline in the same run: plain SQLite
FTS5 (bm25 over the passages' text, the query words OR-ed).

    python -m bench.documents            # 300 pages, 100 questions
    python -m bench.documents --smoke    # 40 pages, 20 questions
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from agentcore.clock import SystemClock
from agentcore.media.reader import DocumentReader
from agentcore.records import DocState, FileUpdate, StoredFile, UserActivity
from agentcore.settings import MediaSettings
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundFile, InboundMessage, NoticeList
from bench.common import print_table, summary_ms, write_json
from bench.pdfgen import Fact, make_pdf

KEY = AgentKey("bench", "reader")


@dataclass(frozen=True)
class Recall:
    questions: int
    r_at_1: float
    r_at_5: float


async def ingest(storage: SQLiteStorage, pdf: bytes, pages: int) -> tuple[int, dict[str, Any]]:
    """Store the PDF as a person's document and read it; the agent id and the figures."""
    now = SystemClock().now()
    message = InboundMessage(KEY, "", now, files=(InboundFile("r.pdf", "application/pdf", pdf),))
    pending = await storage.add_pending(message, now)
    assert pending is not None
    [waiting] = await storage.pending_files(KEY, pending)
    update = FileUpdate(waiting.file.id, "", None, DocState.READING, pages)
    await storage.prepare_pending(pending, "", [update])
    created = await storage.create_agent(KEY, "bench", now, [])
    assert created is not None
    await storage.claim_pending(KEY, pending, created.id, UserActivity(now, 1, "bench"))
    [document] = await storage.list_files(created.id, DocState.READING)
    return created.id, await _timed_reading(storage, created.id, document)


async def _timed_reading(
    storage: SQLiteStorage, agent_id: int, document: StoredFile
) -> dict[str, Any]:
    process = psutil.Process()
    before = process.memory_info().rss / 2**20
    reader = DocumentReader(storage, SystemClock(), MediaSettings(progress_seconds=3600))
    samples: list[float] = []
    started = time.perf_counter()
    reader.read(agent_id, document, NoticeList())
    while reader.running:
        samples.append(process.memory_info().rss / 2**20)
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    [done] = await storage.list_files(agent_id, DocState.READY)
    return {
        "pages": done.pages_read,
        "seconds": round(seconds, 3),
        "pages_per_second": round(done.pages_read / seconds, 1),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(max(samples, default=before), 1),
    }


async def paging(
    storage: SQLiteStorage, agent_id: int, asked: list[Fact]
) -> tuple[Recall, dict[str, float]]:
    """R@1 / R@5 of the passage search for each fact's question, and its latency."""
    for fact in asked[:10]:  # warm-up: statement cache, page cache
        await storage.search_passages(agent_id, fact.question, 5)
    timings, found = [], []
    for fact in asked:
        started = time.perf_counter()
        passages = await storage.search_passages(agent_id, fact.question, 5)
        timings.append(time.perf_counter() - started)
        found.append([p.page for p in passages])
    return _recall(asked, found), summary_ms(timings)


def plain_fts(path: Path, agent_id: int, asked: list[Fact]) -> tuple[Recall, dict[str, float]]:
    """The baseline: SQLite FTS5 with bm25 over the same passages, query words OR-ed."""
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE plain USING fts5(content, page UNINDEXED)")
    db.execute(
        "INSERT INTO plain (content, page) SELECT content, page FROM passages WHERE agent_id = ?",
        (agent_id,),
    )
    timings, found = [], []
    for fact in asked:
        words = re.findall(r"\w+", fact.question)
        query = " OR ".join(f'"{w}"' for w in words)
        started = time.perf_counter()
        rows = db.execute(
            "SELECT page FROM plain WHERE plain MATCH ? ORDER BY bm25(plain) LIMIT 5", (query,)
        ).fetchall()
        timings.append(time.perf_counter() - started)
        found.append([r[0] for r in rows])
    db.close()
    return _recall(asked, found), summary_ms(timings)


def _recall(asked: list[Fact], found: list[list[int | None]]) -> Recall:
    """How often each fact's page came first, and among the first five found for it."""
    first = sum(pages[:1] == [fact.page] for fact, pages in zip(asked, found, strict=True))
    five = sum(fact.page in pages for fact, pages in zip(asked, found, strict=True))
    n = len(asked)
    return Recall(n, round(100 * first / n, 1), round(100 * five / n, 1))


async def run(pages: int, questions: int, seed: int) -> dict[str, Any]:
    pdf, facts = make_pdf(pages, seed)
    asked = random.Random(seed).sample(facts, min(questions, pages))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "documents.db"
        storage = await SQLiteStorage.open(path)
        try:
            agent_id, reading = await ingest(storage, pdf, pages)
            recall, latency = await paging(storage, agent_id, asked)
        finally:
            await storage.close()
        base_recall, base_latency = plain_fts(path, agent_id, asked)
    return {
        "pdf_pages": pages,
        "pdf_bytes": len(pdf),
        "ingest": reading,
        "recall": asdict(recall),
        "latency": latency,
        "baseline_plain_fts5": {"recall": asdict(base_recall), "latency": base_latency},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.questions = 40, 20
    result = asyncio.run(run(args.pages, args.questions, args.seed))
    ingest_, recall, latency = result["ingest"], result["recall"], result["latency"]
    base = result["baseline_plain_fts5"]
    print_table(
        f"Document paging: {args.pages}-page PDF, {recall['questions']} questions",
        ["search", "R@1 %", "R@5 %", "median ms", "p95 ms"],
        [
            [
                "archival_memory_search",
                recall["r_at_1"],
                recall["r_at_5"],
                latency["median_ms"],
                latency["p95_ms"],
            ],
            [
                "plain FTS5 bm25",
                base["recall"]["r_at_1"],
                base["recall"]["r_at_5"],
                base["latency"]["median_ms"],
                base["latency"]["p95_ms"],
            ],
        ],
    )
    print_table(
        "Document ingest",
        ["pages", "seconds", "pages/s", "RSS before MB", "RSS peak MB"],
        [
            [
                ingest_["pages"],
                ingest_["seconds"],
                ingest_["pages_per_second"],
                ingest_["rss_before_mb"],
                ingest_["rss_peak_mb"],
            ]
        ],
    )
    write_json("documents", {"smoke": args.smoke, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
