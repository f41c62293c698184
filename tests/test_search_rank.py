"""The re-ranker and the search plan (pure functions over hand-made candidates)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from agentcore.search.analysis import index_terms
from agentcore.search.dates import Period
from agentcore.search.plan import (
    preselect,
    rank_query,
    selecting_keys,
    without_idle_prefixes,
)
from agentcore.search.query import parse_query
from agentcore.search.rank import Candidate, RankQuery, Stats, rank, sessions_of

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR_MS = 3_600_000


def turns(*texts: str, start: datetime = T0, seq0: int = 0) -> list[Candidate]:
    """Consecutive turns a minute apart."""
    ms = int(start.timestamp() * 1000)
    return [
        Candidate(seq0 + i + 1, seq0 + i, ms + i * 60_000, " ".join(index_terms(t)))
        for i, t in enumerate(texts)
    ]


def count_keys(query: RankQuery, documents: Iterable[str]) -> dict[str, int]:
    """How many of ``documents`` (stored terms, space-separated) hold each of the query's keys."""
    counts = dict.fromkeys(query.weighted_keys(), 0)
    for terms in documents:
        for key in query.counts(terms):
            counts[key] += 1
    return counts


def ranked(query_text: str, history: Sequence[Candidate]) -> list[int]:
    query = parse_query(query_text)
    plan = rank_query(query)
    df = count_keys(plan, (c.terms for c in history))
    plan = without_idle_prefixes(plan, df)
    avg = sum(c.length for c in history) / len(history)
    return [c.id for c, _ in rank(plan, history, Stats(len(history), avg, df))]


def test_words_rare_in_this_history_count_more() -> None:
    history = turns(
        "Alice: the garden is full of tomatoes",
        "Alice: what a lovely day",
        "Alice: work was long",
        "Alice: lovely dinner with Bob",
    )
    assert ranked("Alice garden", history)[0] == 1


def test_a_turn_next_to_a_match_outranks_a_lone_match() -> None:
    morning = turns("we went camping by the lake", "the trip was amazing")
    later = turns(
        "my trip to the dentist", start=T0 + timedelta(days=30), seq0=len(morning)
    )  # another session: its match has no matching neighbour
    order = ranked("camping trip", morning + later)
    assert order.index(2) < order.index(3)


def test_turns_that_match_nothing_are_not_results() -> None:
    history = turns("what did you research?", "adoption agencies", "I like pizza")
    assert ranked("research", history) == [1]


def test_naming_the_person_the_query_names_counts() -> None:
    history = turns("the concert was loud", "Jane loved the concert")
    assert ranked("Did Jane enjoy the concert?", history)[0] == 2


def test_a_named_date_prefers_and_includes_that_day() -> None:
    first = turns("we baked bread", start=datetime(2023, 11, 2, 9, tzinfo=UTC))
    second = turns(
        "we baked cookies", "it snowed", start=datetime(2023, 11, 9, 9, tzinfo=UTC), seq0=1
    )
    order = ranked("What did we bake on 9 November 2023?", first + second)
    assert order == [2, 3, 1]  # baked that day; that day's talk; baked, but a week before


def test_ties_go_to_the_newest() -> None:
    history = turns("walk the dog", "walk the dog")
    assert ranked("dog", history) == [2, 1]


def test_prefixes_join_words_the_stemmer_keeps_apart() -> None:
    history = turns("I won the video game tourney", "nothing here")
    assert ranked("tournaments", history) == [1]


def test_sessions_split_at_long_pauses() -> None:
    ms = int(T0.timestamp() * 1000)
    candidates = [
        Candidate(1, 0, ms, "a"),
        Candidate(3, 2, ms + 4 * HOUR_MS, "c"),
        Candidate(2, 1, ms + 60_000, "b"),
    ]
    assert sessions_of(candidates) == [0, 1, 0]


def test_key_counts_prefer_exact_terms_over_prefixes() -> None:
    plan = RankQuery({"paint": 1.0}, {"paint": 0.4})
    assert plan.counts("paint painter paint x") == {"paint": 2, "paint*": 1}
    assert plan.counts("") == {}


def test_rank_of_nothing_is_nothing() -> None:
    assert rank(RankQuery({"x": 1.0}), [], Stats(0, 0.0, {})) == []


def test_selecting_keys_leave_common_ones_to_the_ranker() -> None:
    plan = RankQuery({"carolin": 1.0, "adopt": 1.0, "zebra": 1.0})
    df = {"carolin": 60, "adopt": 3, "zebra": 0}
    assert selecting_keys(plan, df, docs=100) == ["adopt"]


def test_in_a_short_history_every_present_key_selects() -> None:
    plan = RankQuery({"sister": 1.0, "lisbon": 1.0, "still": 1.0})
    df = {"sister": 5, "lisbon": 4, "still": 1}
    assert selecting_keys(plan, df, docs=6) == ["sister", "lisbon", "still"]


def test_preselect_orders_by_summed_rarity_then_newest() -> None:
    plan = RankQuery({"rare": 1.0, "common": 1.0})
    df = {"rare": 1, "common": 50}
    matches = [("common", 5), ("rare", 7), ("common", 7), ("common", 9)]
    assert preselect(matches, plan, df, docs=100) == [7, 9, 5]


def test_idle_prefixes_are_dropped() -> None:
    plan = rank_query(parse_query("painting landscapes"))
    assert set(plan.prefixes) == {"paint", "lands"}
    trimmed = without_idle_prefixes(plan, {"paint": 3, "paint*": 5, "landscap": 2, "landS*": 0})
    assert set(trimmed.prefixes) == {"paint"}


def test_rank_query_carries_names_and_dates() -> None:
    plan = rank_query(parse_query("Jane in March 2024"), {"jane": ["jan"]})
    assert plan.names == frozenset({"jane"})
    assert plan.periods == (Period(date(2024, 3, 1), date(2024, 3, 31)),)
    assert plan.terms["jan"] < plan.terms["jane"]  # a stand-in counts less


def test_a_rows_key_counts_come_in_the_querys_order_whatever_the_hash_seed() -> None:
    # Scores are float sums over these counts: a set's order (it changes with PYTHONHASHSEED)
    # would change their last digit from one process to the next, and with it an exact tie.
    script = (
        "from agentcore.search.rank import RankQuery\n"
        "q = RankQuery(dict.fromkeys('paint lake dog sunris hike camp kid beach'.split(), 1.0))\n"
        "print(list(q.counts('beach kid camp hike sunris dog lake paint paint')))\n"
    )
    orders = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert orders == {str("paint lake dog sunris hike camp kid beach".split()) + "\n"}
