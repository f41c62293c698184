"""Re-ranking a person's messages for a query: pure functions over candidate turns.

The full-text index finds candidates cheaply; this decides their order with signals the index
cannot compute:

- **BM25 with per-person statistics.** How rare a word is, is judged within this person's own
  history, not across every user's: a friend's name that fills one person's chats says little
  there, even if it is rare in the database as a whole.
- **Neighbours.** In a chat the answer is often the turn after the question ("what did you
  research?" → "adoption agencies"), so a turn earns part of the score of the turns next to it
  in the same session.
- **Passages and sessions.** A query's words are often spread over a few consecutive turns, or
  over one session; a window of turns around a turn, and the session it belongs to, are scored
  as documents too.
- **Names and dates.** Turns that mention the people or places the query names, or that were
  written on a date the query names, are preferred.

A *session* is a run of turns with no pause longer than ``SESSION_GAP_MS`` between them.
Every signal is normalised to the best candidate's value, so the weights below mean the same
whatever the query. Ties go to the newest turn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agentcore.search.dates import DAY_MS, Period

SESSION_GAP_MS = 3 * 3_600_000  # a pause this long starts a new session


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    seq: int  # position in the owner's history: consecutive turns differ by one
    at_ms: int  # when it was written (ms since the epoch, UTC)
    terms: str  # its index terms (``analysis.index_terms``), space-separated, as stored

    @property
    def length(self) -> int:
        return self.terms.count(" ") + 1 if self.terms else 0


@dataclass(frozen=True, slots=True)
class Stats:
    """What the ranker needs to know about the whole history, not just the candidates."""

    docs: int  # searchable turns in the history
    avg_len: float  # their mean length in terms
    df: Mapping[str, int]  # per query key (``RankQuery.weighted_keys``): how many turns contain it


@dataclass(frozen=True, slots=True)
class Weights:
    k1: float = 1.2
    b: float = 0.75
    neighbour: float = 0.7  # share of the adjacent turn's score a turn earns
    neighbour_decay: float = 0.5  # ... and of the turn two away, times this
    reach: int = 2  # how many turns away a neighbour can be
    session_best: float = 0.5  # share of its session's best turn score every turn gets
    window: float = 0.3  # weight of the window of turns around a turn
    session: float = 0.2  # weight of the whole session as one document
    name: float = 1.0  # score multiplier bonus for a turn naming someone the query names
    date: float = 0.5  # bonus for a turn written in a period the query names
    date_slack_days: int = 3  # ... fading to nothing this many days outside it


DEFAULT_WEIGHTS = Weights()


PREFIX_CHARS = 5  # prefixes this long stand in for words the stemmer does not join


@dataclass(frozen=True, slots=True)
class RankQuery:
    terms: Mapping[str, float]  # term → weight (1.0, or less for a fuzzy stand-in)
    # prefix (PREFIX_CHARS long) → weight: any other term starting with it matches
    prefixes: Mapping[str, float] = field(default_factory=dict)
    names: frozenset[str] = frozenset()
    periods: tuple[Period, ...] = ()

    def weighted_keys(self) -> dict[str, float]:
        """Every matchable key with its weight; a prefix's key is ``prefix + "*"``."""
        return dict(self.terms) | {p + "*": w for p, w in self.prefixes.items()}

    def counts(self, terms: str) -> dict[str, int]:
        """How often each key occurs in ``terms`` (stored, space-separated); a term found
        exactly counts for itself, not for its prefix."""
        tokens = terms.split()
        present = set(tokens)
        # In the query's order, not a set's: scores are sums of floats, and a set's order
        # changes with the process's hash seed, so the last digit (and an exact tie) would too.
        found = {t: tokens.count(t) for t in self.terms if t in present}
        if self.prefixes and not self.prefixes.keys().isdisjoint(t[:PREFIX_CHARS] for t in tokens):
            for token in tokens:
                head = token[:PREFIX_CHARS]
                if head in self.prefixes and token not in self.terms:
                    key = head + "*"
                    found[key] = found.get(key, 0) + 1
        return found


def idf(docs: int, df: int) -> float:
    """BM25's inverse document frequency (never negative)."""
    return math.log(1.0 + (docs - df + 0.5) / (df + 0.5))


def rank(
    query: RankQuery,
    candidates: Sequence[Candidate],
    stats: Stats,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[tuple[Candidate, float]]:
    """``candidates`` best first, with their scores.

    Only a candidate that holds one of the query's keys, or was written in a period the query
    names, is returned: neighbours and sessions decide the order, never whether a turn is a
    result (a search for "pineapple" lists messages about pineapples, not their neighbours).
    """
    if not candidates:
        return []
    turns = _Turns(query, candidates, stats, weights)
    signals = [(turns.smoothed(), 1.0)]
    if weights.window:
        signals.append((turns.windows(), weights.window))
    if weights.session:
        signals.append((turns.session_scores(), weights.session))
    scores = _combine(signals)
    closeness = _date_closeness(candidates, query.periods, weights)
    scores = [s + weights.date * d * (1 + s) for s, d in zip(scores, closeness, strict=True)]
    scores = _apply_names(scores, turns.counts, query.names, weights)
    found = [i for i, count in enumerate(turns.counts) if count or closeness[i] > 0]
    found.sort(key=lambda i: (-scores[i], -candidates[i].id))
    return [(candidates[i], scores[i]) for i in found]


class _Turns:
    """The candidates' per-turn facts that the signals share, computed once."""

    def __init__(
        self, query: RankQuery, candidates: Sequence[Candidate], stats: Stats, weights: Weights
    ) -> None:
        self.weights = weights
        self.avg_len = max(stats.avg_len, 1.0)
        self.term_weight = {
            k: w * idf(stats.docs, stats.df.get(k, 0)) for k, w in query.weighted_keys().items()
        }
        self.counts = [query.counts(c.terms) for c in candidates]
        self.lengths = [c.length for c in candidates]
        self.own = [
            self.bm25(tf, length, self.avg_len) if tf else 0.0
            for tf, length in zip(self.counts, self.lengths, strict=True)
        ]
        self.sessions, self.near = _sessions_and_neighbours(candidates, weights.reach)

    def bm25(
        self, tf: Mapping[str, int], length: int, avg_len: float, b: float | None = None
    ) -> float:
        k1 = self.weights.k1
        b = self.weights.b if b is None else b
        norm = k1 * (1 - b + b * length / avg_len)
        weight = self.term_weight
        score = 0.0
        for key, f in tf.items():
            score += weight[key] * f * (k1 + 1) / (f + norm)
        return score

    def smoothed(self) -> list[float]:
        """Each turn's score plus a share of its best neighbour's, plus its session's best."""
        own, weights = self.own, self.weights
        bonus = [0.0] * len(own)
        best_in_session: dict[int, float] = {}
        for i, score in enumerate(own):
            session = self.sessions[i]
            best_in_session[session] = max(best_in_session.get(session, 0.0), score)
            if score <= 0:
                continue
            for j, distance in self.near[i]:
                share = weights.neighbour * weights.neighbour_decay ** (distance - 1)
                bonus[j] = max(bonus[j], share * score)
        return [
            own[i] + bonus[i] + weights.session_best * best_in_session[self.sessions[i]]
            for i in range(len(own))
        ]

    def windows(self) -> list[float]:
        """BM25 of each turn together with the turns around it, as one passage."""
        span_len = (2 * self.weights.reach + 1) * self.avg_len
        scores = []
        for i, count in enumerate(self.counts):
            near = self.near[i]
            if not count and not any(self.counts[j] for j, _ in near):
                scores.append(0.0)
                continue
            tf = dict(count)
            length = self.lengths[i]
            for j, _ in near:
                for key, n in self.counts[j].items():
                    tf[key] = tf.get(key, 0) + n
                length += self.lengths[j]
            scores.append(self.bm25(tf, length, span_len))
        return scores

    def session_scores(self) -> list[float]:
        """BM25 of each turn's whole session (as far as the candidates show it); no length
        normalisation, as sessions differ in length for reasons of their own."""
        tf: dict[int, dict[str, int]] = {}
        for session, count in zip(self.sessions, self.counts, strict=True):
            merged = tf.setdefault(session, {})
            for key, n in count.items():
                merged[key] = merged.get(key, 0) + n
        score = {s: self.bm25(t, 0, self.avg_len, b=0.0) for s, t in tf.items()}
        return [score[s] for s in self.sessions]


def sessions_of(candidates: Sequence[Candidate]) -> list[int]:
    """A session number per candidate: candidates in history order, split at long pauses."""
    return _sessions_and_neighbours(candidates, 0)[0]


def _sessions_and_neighbours(
    candidates: Sequence[Candidate], reach: int
) -> tuple[list[int], list[list[tuple[int, int]]]]:
    """Per candidate, its session number, and (index, distance) of the candidates within
    ``reach`` positions in the same session: one pass over the candidates in history order."""
    order = sorted(range(len(candidates)), key=lambda i: candidates[i].seq)
    session = [0] * len(candidates)
    near: list[list[tuple[int, int]]] = [[] for _ in candidates]
    current = 0
    for n, i in enumerate(order):
        if n and candidates[i].at_ms - candidates[order[n - 1]].at_ms > SESSION_GAP_MS:
            current += 1
        session[i] = current
        for j in order[max(0, n - reach) : n]:  # earlier turns close enough, same session
            distance = candidates[i].seq - candidates[j].seq
            if distance <= reach and session[j] == current:
                near[i].append((j, distance))
                near[j].append((i, distance))
    return session, near


def normalised(values: Sequence[float]) -> list[float]:
    top = max(values, default=0.0)
    return [v / top for v in values] if top > 0 else [0.0] * len(values)


def _combine(signals: Sequence[tuple[Sequence[float], float]]) -> list[float]:
    """The weighted sum of the signals, each normalised to its best candidate."""
    total = [0.0] * len(signals[0][0])
    for values, weight in signals:
        for i, value in enumerate(normalised(values)):
            total[i] += weight * value
    return total


def _date_closeness(
    candidates: Sequence[Candidate], periods: Sequence[Period], weights: Weights
) -> list[float]:
    """Per candidate, how close it was written to a period the query names (0 to 1)."""
    if not periods:
        return [0.0] * len(candidates)
    bounds = [p.bounds_ms() for p in periods]
    return [date_closeness(c.at_ms, bounds, weights.date_slack_days) for c in candidates]


def date_closeness(at_ms: int, bounds: Sequence[tuple[int, int]], slack_days: int) -> float:
    """1 inside any of the periods, fading linearly to 0 at ``slack_days`` outside."""
    best = 0.0
    for lo, hi in bounds:
        if lo <= at_ms <= hi:
            return 1.0
        gap_days = (lo - at_ms if at_ms < lo else at_ms - hi) / DAY_MS
        best = max(best, 1.0 - gap_days / (slack_days + 1))
    return best


def _apply_names(
    scores: list[float],
    counts: Sequence[Mapping[str, int]],
    names: frozenset[str],
    weights: Weights,
) -> list[float]:
    if not names:
        return scores
    return [
        s * (1 + weights.name) if any(n in count for n in names) else s
        for s, count in zip(scores, counts, strict=True)
    ]
