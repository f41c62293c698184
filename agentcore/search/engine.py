"""A search, run the same way on every storage backend: the steps of ``plan`` over an index.

A backend provides the index of one person's rows (``MessageIndex`` for their messages,
``PassageIndex`` for their archival passages): counts, matches and rows, each cheap because it
is scoped to that person inside the backend's own index. Everything else, what to look up and
how to order what is found, is this module and ``rank``, shared, so the backends find the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from agentcore.clock import to_millis
from agentcore.records import Passage, SearchHit
from agentcore.search.fuzzy import corrections, max_edits
from agentcore.search.meaning import (
    DEPTH,
    QueryEmbedder,
    VectorRows,
    fuse,
    without_common_words,
)
from agentcore.search.plan import (
    CANDIDATES,
    DATE_CANDIDATES,
    NEIGHBOUR_ANCHORS,
    PASSAGE_WEIGHTS,
    UNCOMMON,
    Uncommon,
    date_windows,
    fallback_key,
    misspelt,
    preselect,
    rank_query,
    selecting_keys,
    without_idle_prefixes,
)
from agentcore.search.query import SearchQuery, parse_query
from agentcore.search.rank import Candidate, RankQuery, Stats, rank

VOCAB_HEAD = 3  # a misspelt word is looked for among real words sharing its first letters
MAX_CORRECTIONS = 3  # real words standing in for one misspelt word, at most

R_co = TypeVar("R_co", covariant=True)
Found = TypeVar("Found", SearchHit, Passage)


@dataclass(frozen=True, slots=True)
class Totals:
    """The person's searchable rows, and their terms in all (None where not kept)."""

    docs: int
    terms: int | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """What ``TermIndex.holding`` read: the totals, and per key the ids of at most ``cap`` of
    the person's rows holding it (no entry for a key no row holds)."""

    totals: Totals
    cap: int
    ids: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Counted:
    """What a search reads first (``_counted``): the person's totals, how many of their rows
    hold each of the query's keys, and the rows holding each key that may select candidates."""

    totals: Totals
    df: dict[str, int]
    held: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Indexed(Generic[R_co]):
    """A row as the ranker sees it, and as the caller gets it back."""

    candidate: Candidate
    record: R_co


class TermIndex(Protocol):
    """One person's rows, found by index term. A key is a term, or a prefix ending in ``*``."""

    async def counts(self, keys: Sequence[str]) -> tuple[Totals, dict[str, int]]:
        """The person's totals, and how many of their rows hold each key."""
        ...

    async def holding(self, keys: Sequence[str], uncommon: Uncommon) -> Held:
        """``counts`` and ``matches`` in one step, for the keys that may select candidates: the
        totals, and per key the ids of the person's rows holding it, at most ``cap`` of them
        (``uncommon.rows(docs)`` rounded down, plus one). A key with fewer than ``cap`` is
        held by exactly those rows; one with ``cap`` by too many to select."""
        ...

    async def unknown(self, terms: Sequence[str]) -> list[str]:
        """The terms that nobody's rows hold (likely typing slips; a word this person never
        used but others did is just absent, not misspelt)."""
        ...

    async def near(self, head: str, shortest: int, longest: int) -> list[str]:
        """Indexed terms (anyone's) starting with ``head``, ``shortest``..``longest`` long."""
        ...

    async def matches(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        """``(key, row id)`` for each of the person's rows holding each key."""
        ...

    async def newest(self, key: str, limit: int) -> list[int]:
        """The ids of the person's newest ``limit`` rows holding ``key``, newest first."""
        ...


class MessageIndex(TermIndex, VectorRows, Protocol):
    async def around(
        self, ids: Sequence[int], anchors: Sequence[int], lo: int, hi: int
    ) -> list[Indexed[SearchHit]]:
        """The rows ``ids``, and the turns within ``rank.Weights.reach`` of each of
        ``anchors`` (by position), written between ``lo`` and ``hi`` (ms, inclusive)."""
        ...

    async def written_between(self, lo: int, hi: int, limit: int) -> list[Indexed[SearchHit]]:
        """The person's first ``limit`` searchable turns written between ``lo`` and ``hi``."""
        ...

    async def latest_between(self, lo: int, hi: int, limit: int) -> list[SearchHit]:
        """The person's last ``limit`` searchable turns written between ``lo`` and ``hi``,
        newest first."""
        ...


class PassageIndex(TermIndex, VectorRows, Protocol):
    async def rows(self, ids: Sequence[int]) -> list[Indexed[Passage]]: ...


FAR_PAST, FAR_FUTURE = -(2**62), 2**62  # no bound, in ms


async def find_messages(
    index: MessageIndex,
    text: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    fuzzy: bool = True,
    meaning: QueryEmbedder | None = None,
) -> list[SearchHit]:
    """``MessageStore.search_messages``: the person's messages for the query ``text`` written
    between ``start`` and ``end`` (inclusive), best first. A date range alone lists that
    period's messages, newest first; no query and no range finds nothing. With ``meaning``,
    the messages nearest the query in meaning are ranked in too (``meaning.fuse``)."""
    lo = to_millis(start) if start else FAR_PAST
    hi = to_millis(end) if end else FAR_FUTURE
    query = parse_query(text)
    if query.empty:
        if start is None and end is None:
            return []
        return await index.latest_between(lo, hi, limit)
    if meaning is None:
        return await search_messages(index, query, lo, hi, limit, fuzzy)
    counted = await _counted(index, list(rank_query(query).weighted_keys()))
    lexical, nearest = await asyncio.gather(
        search_messages(index, query, lo, hi, max(limit, DEPTH), fuzzy, counted),
        _nearest(index, meaning, without_common_words(text, counted.df, counted.totals.docs)),
    )
    if nearest is None:
        return lexical[:limit]

    async def fetch(ids: list[int]) -> list[SearchHit]:  # those written in the range
        return [r.record for r in await index.around(ids, [], lo, hi)]

    return (await _fused(lexical, nearest, fetch))[:limit]


async def find_passages(
    index: PassageIndex,
    text: str,
    limit: int,
    offset: int = 0,
    fuzzy: bool = True,
    meaning: QueryEmbedder | None = None,
) -> list[Passage]:
    """``PassageStore.search_passages``: the person's passages for the query ``text``, ``limit``
    of them after the first ``offset``; with ``meaning`` as ``find_messages``."""
    query = parse_query(text)
    if query.empty:
        return []
    if meaning is None:
        return await search_passages(index, query, limit, offset, fuzzy)
    counted = await _counted(index, list(rank_query(query).weighted_keys()))
    lexical, nearest = await asyncio.gather(
        search_passages(index, query, max(offset + limit, DEPTH), 0, fuzzy, counted),
        _nearest(index, meaning, without_common_words(text, counted.df, counted.totals.docs)),
    )
    if nearest is None:
        return lexical[offset : offset + limit]

    async def fetch(ids: list[int]) -> list[Passage]:
        return [r.record for r in await index.rows(ids)] if ids else []

    fused = await _fused(lexical, nearest, fetch)
    return fused[offset : offset + limit]


async def _fused(
    lexical: Sequence[Found],
    nearest: Sequence[int],
    fetch: Callable[[list[int]], Awaitable[list[Found]]],
) -> list[Found]:
    """The lexical results and the rows nearest in meaning in one ranking (``meaning.fuse``),
    each with its fused score; rows only the vectors found are read with ``fetch`` (which
    leaves out those the search may not return, e.g. outside its date range)."""
    known = {r.id: r for r in lexical}
    order = fuse(list(known), nearest)
    known.update((r.id, r) for r in await fetch([i for i, _ in order if i not in known]))
    return [replace(known[i], score=score) for i, score in order if i in known]


async def _nearest(
    index: MessageIndex | PassageIndex, meaning: QueryEmbedder, text: str
) -> list[int] | None:
    """The ids of the person's rows nearest ``text`` in meaning, best first (run beside the
    lexical search: on PostgreSQL reading the vectors overlaps it); None if the query has no
    vector (the search is then lexical only)."""
    from agentcore.search.vectors import nearest  # noqa: PLC0415 (numpy, only when embedding)

    vector = await meaning.query_vector(text)
    if vector is None:
        return None
    return nearest(vector.values, await index.vectors(vector.model_id), DEPTH)


async def search_messages(
    index: MessageIndex,
    query: SearchQuery,
    lo: int,
    hi: int,
    limit: int,
    fuzzy: bool = True,
    counted: Counted | None = None,
) -> list[SearchHit]:
    """The person's messages written between ``lo`` and ``hi`` (ms), best first. ``fuzzy``:
    also look for real words standing in for query words nobody ever wrote (typing slips).
    ``counted``: the query's keys, read already (``_counted``)."""
    plan = rank_query(query)
    counted = counted or await _counted(index, list(plan.weighted_keys()))
    totals, df, held = counted.totals, counted.df, counted.held
    if not totals.docs:
        return []
    if fuzzy:
        plan, df = await _with_corrections(index, query, plan, df)
    plan = without_idle_prefixes(plan, df)
    ids = await _preselected(index, plan, df, totals.docs, held)
    found = {r.candidate.id: r for r in await index.around(ids, ids[:NEIGHBOUR_ANCHORS], lo, hi)}
    for start, end in date_windows(query.periods):
        dated = await index.written_between(max(start, lo), min(end, hi), DATE_CANDIDATES)
        found.update((r.candidate.id, r) for r in dated)
    stats = Stats(totals.docs, (totals.terms or 0) / totals.docs, df)
    ranked = rank(plan, [r.candidate for r in found.values()], stats)[:limit]
    return [replace(found[c.id].record, score=score) for c, score in ranked]


async def search_passages(
    index: PassageIndex,
    query: SearchQuery,
    limit: int,
    offset: int = 0,
    fuzzy: bool = True,
    counted: Counted | None = None,
) -> list[Passage]:
    """The person's archival passages, best first (words and names; no neighbours or sessions:
    passages are separate notes, and their filing date is not the date of what they tell),
    ``limit`` of them after the first ``offset`` (the pages of a long answer)."""
    plan = rank_query(query)
    counted = counted or await _counted(index, list(plan.weighted_keys()))
    totals, df, held = counted.totals, counted.df, counted.held
    if not totals.docs:
        return []
    if fuzzy:
        plan, df = await _with_corrections(index, query, plan, df)
    plan = without_idle_prefixes(RankQuery(plan.terms, plan.prefixes, plan.names), df)
    found = await index.rows(await _preselected(index, plan, df, totals.docs, held))
    by_id = {r.candidate.id: r.record for r in found}
    candidates = [r.candidate for r in found]
    avg_len = sum(c.length for c in candidates) / max(len(candidates), 1)
    ranked = rank(plan, candidates, Stats(totals.docs, avg_len, df), PASSAGE_WEIGHTS)
    return [replace(by_id[c.id], score=score) for c, score in ranked[offset : offset + limit]]


async def _counted(index: TermIndex, keys: list[str]) -> Counted:
    """``index.counts(keys)``, and the rows holding each key that may select candidates, read
    together (``TermIndex.holding``: one statement where ``counts`` then ``matches`` were two);
    only the keys held by too many rows to read are counted on their own."""
    held = await index.holding(keys, UNCOMMON)
    rows = {k: ids for k, ids in held.ids.items() if len(ids) < held.cap}
    df = {k: len(rows.get(k, ())) for k in keys}
    common = [k for k in held.ids if k not in rows]
    if common:
        df.update((await index.counts(common))[1])
    return Counted(held.totals, df, rows)


async def _with_corrections(
    index: TermIndex, query: SearchQuery, plan: RankQuery, df: Mapping[str, int]
) -> tuple[RankQuery, dict[str, int]]:
    """Swap query words that nobody ever wrote for real words a typing slip away."""
    unknown = misspelt(query, df)
    if unknown:
        unknown = await index.unknown(unknown)
    fixes = {t: await _known_near(index, t) for t in unknown}
    fixes = {t: near for t, near in fixes.items() if near}
    if not fixes:
        return plan, dict(df)
    plan = rank_query(query, fixes)
    missing = [k for k in plan.weighted_keys() if k not in df]
    _, more = await index.counts(missing) if missing else (None, {})
    return plan, {**df, **more}


async def _known_near(index: TermIndex, term: str) -> list[str]:
    """Indexed terms a few typing slips away from ``term`` (sharing its first letters)."""
    slack = max_edits(term)
    near = await index.near(term[:VOCAB_HEAD], len(term) - slack, len(term) + slack)
    return corrections(term, near)[:MAX_CORRECTIONS]


async def _preselected(
    index: TermIndex,
    plan: RankQuery,
    df: Mapping[str, int],
    docs: int,
    held: Mapping[str, list[int]],
) -> list[int]:
    """Candidate ids, best first: rows holding the distinctive keys, ranked by their rarity;
    if every key is common, the newest rows holding the rarest one. ``held``: the rows
    holding each of the keys that could select them, read already (``_counted``)."""
    keys = selecting_keys(plan, df, docs)
    if keys:
        return preselect(await _matches(index, keys, held), plan, df, docs)
    rarest = fallback_key(plan, df)
    if rarest is None:
        return []
    return await index.newest(rarest, CANDIDATES)


async def _matches(
    index: TermIndex, keys: list[str], held: Mapping[str, list[int]]
) -> list[tuple[str, int]]:
    """``index.matches(keys)``, key by key in the order of ``keys`` (so a row's rarities are
    summed in one order whichever way they were read), those in ``held`` taken from there."""
    found = {k: held[k] for k in keys if k in held}
    missing = [k for k in keys if k not in found]
    for key, row_id in await index.matches(missing) if missing else []:
        found.setdefault(key, []).append(row_id)
    return [(k, i) for k in keys for i in found.get(k, ())]
