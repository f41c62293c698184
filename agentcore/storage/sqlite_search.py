"""Ranked search on SQLite: FTS5 finds candidates cheaply, ``agentcore.search.rank`` orders them.

Every statement is scoped to one agent, inside the index match (``fts.scoped``) or by an index
whose first column is the agent, so a search costs about the same in a database of a thousand
users as in a database of one. A search takes three or four statements; the steps are described
in ``agentcore.search.plan``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentcore.search.fts import owner_token, quote, scoped
from agentcore.search.fuzzy import corrections, max_edits
from agentcore.search.plan import (
    CANDIDATES,
    DATE_CANDIDATES,
    NEIGHBOUR_ANCHORS,
    PASSAGE_WEIGHTS,
    date_windows,
    fallback_key,
    misspelt,
    preselect,
    rank_query,
    selecting_keys,
    without_idle_prefixes,
)
from agentcore.search.query import SearchQuery
from agentcore.search.rank import DEFAULT_WEIGHTS, Candidate, RankQuery, Stats, rank

Reader = Callable[[str, Sequence[Any]], Awaitable[list[sqlite3.Row]]]

# Columns of a message row as the search reads it: id, role, content, created_at, seq, terms.
_ROW = "m.id, m.role, m.content, m.created_at, m.seq, m.terms"
_VOCAB_HEAD = 3  # a misspelt word is looked for among real words sharing its first letters


@dataclass(frozen=True, slots=True)
class Found:
    """A ranked row, as selected, with its score."""

    row: sqlite3.Row
    score: float


async def search_messages(
    read: Reader, agent_id: int, query: SearchQuery, lo: int, hi: int, limit: int
) -> list[Found]:
    """The agent's searchable messages written between ``lo`` and ``hi`` (ms), best first."""
    plan = rank_query(query)
    totals, df = await _counts(read, "messages_fts", agent_id, plan, "search_docs, search_terms")
    docs, total_terms = totals
    if not docs:
        return []
    plan, df = await _with_corrections(
        read, "messages_fts", "messages_vocab", agent_id, query, plan, df
    )
    plan = without_idle_prefixes(plan, df)
    ids = await _preselected(read, "messages_fts", agent_id, plan, df, docs)
    rows = {r[0]: r for r in await _message_rows(read, agent_id, ids, lo, hi)}
    for start, end in date_windows(query.periods):
        rows.update((r[0], r) for r in await _written_between(read, agent_id, start, end, lo, hi))
    candidates = [Candidate(r[0], r[4], r[3], r[5]) for r in rows.values()]
    ranked = rank(plan, candidates, Stats(docs, total_terms / docs, df))[:limit]
    return [Found(rows[c.id], score) for c, score in ranked]


async def search_passages(
    read: Reader, agent_id: int, query: SearchQuery, limit: int
) -> list[Found]:
    """The agent's archival passages, best first (words and names; no neighbours or sessions:
    passages are separate notes, and their filing date is not the date of what they tell)."""
    owner = "(SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?)"
    owner_match = f"agent_id : {quote(owner_token(agent_id))}"
    plan = rank_query(query)
    (passages,), df = await _counts(read, "passages_fts", agent_id, plan, owner, [owner_match])
    if not passages:
        return []
    plan, df = await _with_corrections(
        read, "passages_fts", "passages_vocab", agent_id, query, plan, df
    )
    plan = without_idle_prefixes(RankQuery(plan.terms, plan.prefixes, plan.names), df)
    ids = await _preselected(read, "passages_fts", agent_id, plan, df, passages)
    marks = ", ".join("?" * len(ids))
    rows = await read(
        f"SELECT id, content, tags, created_at, terms FROM passages WHERE id IN ({marks})", ids
    )
    by_id = {r[0]: r for r in rows}
    candidates = [Candidate(r[0], r[0], r[3], r[4]) for r in rows]
    avg_len = sum(c.length for c in candidates) / max(len(candidates), 1)
    ranked = rank(plan, candidates, Stats(passages, avg_len, df), PASSAGE_WEIGHTS)[:limit]
    return [Found(by_id[c.id], score) for c, score in ranked]


async def _counts(
    read: Reader,
    fts: str,
    agent_id: int,
    plan: RankQuery,
    totals: str,
    totals_params: Sequence[Any] = (),
) -> tuple[tuple[int, ...], dict[str, int]]:
    """The agent's ``totals`` (columns of its ``agents`` row, or subqueries), and how many of
    its rows hold each key of ``plan``: one statement."""
    keys = list(plan.weighted_keys())
    rows = await read(
        f"SELECT {', '.join([totals] + [_count(fts)] * len(keys))} FROM agents WHERE id = ?",
        [*totals_params, *(scoped("agent_id", agent_id, "terms", [k]) for k in keys), agent_id],
    )
    if not rows:
        return (0,) * (totals.count(",") + 1), {}
    width = len(rows[0]) - len(keys)
    return tuple(rows[0][:width]), dict(zip(keys, rows[0][width:], strict=True))


async def _with_corrections(
    read: Reader,
    fts: str,
    vocab: str,
    agent_id: int,
    query: SearchQuery,
    plan: RankQuery,
    df: dict[str, int],
) -> tuple[RankQuery, dict[str, int]]:
    """Swap query words that nobody ever wrote for real words a typing slip away."""
    unknown = misspelt(query, df)
    if unknown:
        unknown = await _unknown_everywhere(read, fts, unknown)
    fixes = {t: await _known_near(read, vocab, t) for t in unknown}
    fixes = {t: near for t, near in fixes.items() if near}
    if not fixes:
        return plan, df
    plan = rank_query(query, fixes)
    missing = [k for k in plan.weighted_keys() if k not in df]
    rows = await read(
        "SELECT " + ", ".join([_count(fts)] * len(missing)),
        [scoped("agent_id", agent_id, "terms", [k]) for k in missing],
    )
    return plan, df | dict(zip(missing, rows[0], strict=True))


def _count(fts: str) -> str:
    """A subquery: how many rows of ``fts`` match its parameter."""
    return f"(SELECT count(*) FROM {fts} WHERE {fts} MATCH ?)"


async def _unknown_everywhere(read: Reader, fts: str, terms: Sequence[str]) -> list[str]:
    """The terms nobody's messages hold: likely typing slips. (A word this person never used
    but others did is just absent, not misspelt.)"""
    probe = f"EXISTS (SELECT 1 FROM {fts} WHERE {fts} MATCH ?)"
    rows = await read(
        "SELECT " + ", ".join([probe] * len(terms)), [f"terms : {quote(t)}" for t in terms]
    )
    return [t for t, known in zip(terms, rows[0], strict=True) if not known]


async def _known_near(read: Reader, vocab: str, term: str) -> list[str]:
    """Indexed terms a few typing slips away from ``term`` (sharing its first letters)."""
    head = term[:_VOCAB_HEAD]
    slack = max_edits(term)
    rows = await read(
        f"SELECT term FROM {vocab} WHERE term >= ? AND term < ? AND length(term) BETWEEN ? AND ?",
        (head, head + "\U0010ffff", len(term) - slack, len(term) + slack),
    )
    return corrections(term, (r[0] for r in rows))[:3]


async def _preselected(
    read: Reader, fts: str, agent_id: int, plan: RankQuery, df: dict[str, int], docs: int
) -> list[int]:
    """Candidate ids, best first: rows holding the distinctive keys, ranked by their rarity;
    if every key is common, the newest rows holding the rarest one."""
    keys = selecting_keys(plan, df, docs)
    if keys:
        each = f"SELECT ?, rowid FROM {fts} WHERE {fts} MATCH ?"
        params: list[Any] = []
        for key in keys:
            params += [key, scoped("agent_id", agent_id, "terms", [key])]
        rows = await read(" UNION ALL ".join([each] * len(keys)), params)
        return preselect(((r[0], r[1]) for r in rows), plan, df, docs)
    rarest = fallback_key(plan, df)
    if rarest is None:
        return []
    rows = await read(
        f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid DESC LIMIT ?",
        (scoped("agent_id", agent_id, "terms", [rarest]), CANDIDATES),
    )
    return [r[0] for r in rows]


async def _message_rows(
    read: Reader, agent_id: int, ids: Sequence[int], lo: int, hi: int
) -> list[sqlite3.Row]:
    """The candidates, and the turns around the best of them (same agent, by position)."""
    if not ids:
        return []
    reach = DEFAULT_WEIGHTS.reach
    offsets = ", ".join(f"({d})" for d in range(-reach, reach + 1) if d)
    id_marks = ", ".join("?" * len(ids))
    anchors = ids[:NEIGHBOUR_ANCHORS]
    anchor_marks = ", ".join("?" * len(anchors))
    return await read(
        f"SELECT {_ROW} FROM messages m WHERE m.id IN ({id_marks}) "
        "AND m.created_at BETWEEN ? AND ? "
        f"UNION SELECT {_ROW} FROM messages m WHERE m.agent_id = ? AND m.seq IN "
        f"(SELECT a.seq + d.column1 FROM messages a, (VALUES {offsets}) AS d "
        f"WHERE a.id IN ({anchor_marks})) AND m.created_at BETWEEN ? AND ?",
        [*ids, lo, hi, agent_id, *anchors, lo, hi],
    )


async def _written_between(
    read: Reader, agent_id: int, start: int, end: int, lo: int, hi: int
) -> list[sqlite3.Row]:
    return await read(
        f"SELECT {_ROW} FROM messages m WHERE m.agent_id = ? AND m.terms IS NOT NULL "
        "AND m.created_at BETWEEN ? AND ? ORDER BY m.created_at LIMIT ?",
        (agent_id, max(start, lo), min(end, hi), DATE_CANDIDATES),
    )
