"""How a search runs, shared by every storage backend: what to look up and with what weight.

1. Read the query (``query.parse_query``) and turn it into weighted keys (``rank_query``):
   its terms, five-letter prefixes of its longer words, and real words standing in for words
   nobody ever wrote (``misspelt``, ``fuzzy.corrections``).
2. Count how many of the person's messages hold each key (the backend's index, through
   ``engine``).
3. Select candidates cheaply: the messages holding the distinctive keys (``selecting_keys``),
   best first by the summed rarity of the keys they hold (``preselect``); the turns around the
   best of those (``NEIGHBOUR_ANCHORS``); and the turns written in short periods the query
   names (``date_windows``).
4. Order the candidates with ``rank.rank``.

Nothing here depends on ``limit``, so a longer result list always starts with the shorter one.
The full-text index's own BM25 is not used: it counts how rare a word is across every user's
messages, which costs a pass over the word's whole doclist on each query, and it would judge
rarity over everyone rather than this person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agentcore.search.dates import DAY_MS, Period
from agentcore.search.fuzzy import can_be_misspelt
from agentcore.search.query import SearchQuery
from agentcore.search.rank import DEFAULT_WEIGHTS, PREFIX_CHARS, RankQuery, Weights, idf

CANDIDATES = 100  # full-text matches re-ranked per query
NEIGHBOUR_ANCHORS = 30  # the best this many also bring in the turns around them
DATE_CANDIDATES = 200  # turns written in a period the query names, at most
SHORT_PERIOD_DAYS = 31  # "on 9 May 2023", "in March 2023"; a whole year is no help
# A key held by more of the history than this share, or than this many messages, only
# re-ranks: it would select half the history and tell little apart ("I", a person's own name).
COMMON_SHARE = 0.25
COMMON_ROWS = 2000
# ...but a key held by this few messages always selects: in a short history (a new person, a
# few sessions) every word is in a large share of it, and fetching them all is cheap.
FEW_ROWS = 50
PREFIX_WEIGHT = 0.4  # a word that only shares the first letters counts this much
CORRECTION_WEIGHT = 0.8  # a real word standing in for a misspelt one counts this much

# Archival passages are separate notes: no neighbours or sessions, just their words and names
# (and no dates: a note's filing date is not the date of what it tells).
PASSAGE_WEIGHTS = Weights(neighbour=0.0, session_best=0.0, window=0.0, session=0.0, reach=0)


def rank_query(
    query: SearchQuery, corrections: Mapping[str, Sequence[str]] | None = None
) -> RankQuery:
    """The weighted keys for ``query``; ``corrections`` maps unknown terms to real ones."""
    terms: dict[str, float] = dict.fromkeys(query.terms, 1.0)
    for known in (corrections or {}).values():
        for term in known:
            terms.setdefault(term, CORRECTION_WEIGHT)
    prefixes = {
        t[:PREFIX_CHARS]: PREFIX_WEIGHT
        for t in terms
        if t not in query.names and len(t) >= PREFIX_CHARS and t.isalpha() and t.isascii()
    }
    return RankQuery(terms, prefixes, query.names, query.periods)


@dataclass(frozen=True, slots=True)
class Uncommon:
    """The most rows a key may be held by and still select candidates, out of ``docs``:
    ``min(max(share * docs, few), most)`` (a backend computes it in its statements too)."""

    share: float = COMMON_SHARE
    few: int = FEW_ROWS
    most: int = COMMON_ROWS

    def rows(self, docs: int) -> float:
        return min(max(self.share * docs, self.few), self.most)


UNCOMMON = Uncommon()


def selecting_keys(query: RankQuery, df: Mapping[str, int], docs: int) -> list[str]:
    """The keys whose messages are worth fetching as candidates: those some message holds and
    that are not common (see ``COMMON_SHARE``). Empty if every key is common."""
    limit = UNCOMMON.rows(docs)
    return [k for k in query.weighted_keys() if 0 < df.get(k, 0) <= limit]


def fallback_key(query: RankQuery, df: Mapping[str, int]) -> str | None:
    """When every key is common: the rarest one present (its newest messages are candidates)."""
    present = [k for k in query.weighted_keys() if df.get(k, 0) > 0]
    return min(present, key=lambda k: df[k]) if present else None


def preselect(
    matches: Iterable[tuple[str, int]],
    query: RankQuery,
    df: Mapping[str, int],
    docs: int,
) -> list[int]:
    """Candidate ids, best first, from ``(key, id)`` matches: by the summed rarity (weighted
    IDF) of the distinct keys each holds; ties go to the newest. At most ``CANDIDATES``."""
    weights = query.weighted_keys()
    score: dict[int, float] = {}
    for key, row_id in matches:
        score[row_id] = score.get(row_id, 0.0) + weights[key] * idf(docs, df.get(key, 0))
    return sorted(score, key=lambda i: (-score[i], -i))[:CANDIDATES]


def date_windows(periods: Sequence[Period]) -> list[tuple[int, int]]:
    """Millisecond ranges worth fetching every turn of: the short periods, with some slack."""
    slack = DEFAULT_WEIGHTS.date_slack_days * DAY_MS
    return [
        (lo - slack, hi + slack)
        for p in periods
        if p.days <= SHORT_PERIOD_DAYS
        for lo, hi in (p.bounds_ms(),)
    ]


def misspelt(query: SearchQuery, df: Mapping[str, int]) -> list[str]:
    """Query terms that no message holds and that look like words someone mistyped."""
    return [t for t in query.terms if not df.get(t) and can_be_misspelt(t)]


def without_idle_prefixes(query: RankQuery, df: Mapping[str, int]) -> RankQuery:
    """Drop prefix keys that find no message the exact terms do not already find (the common
    case: nobody wrote another word starting the same way), sparing the ranker the work."""
    useful = {
        head: weight
        for head, weight in query.prefixes.items()
        if df.get(head + "*", 0)
        > max((df.get(t, 0) for t in query.terms if t.startswith(head)), default=0)
    }
    if len(useful) == len(query.prefixes):
        return query
    return RankQuery(query.terms, useful, query.names, query.periods)
