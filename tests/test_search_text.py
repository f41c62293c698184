"""The search analyser, query reading, date reading and typo matching (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from agentcore.search.analysis import bigrams, fold, index_terms
from agentcore.search.dates import Period, periods
from agentcore.search.fts import key_expression, owner_token, scoped
from agentcore.search.fuzzy import corrections, edit_distance
from agentcore.search.query import parse_query


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Painting paints PAINTED", ["paint", "paint", "paint"]),
        ("Café NAÏVE résumé", ["cafe", "naiv", "resum"]),
        ("de-stress after work", ["de", "stress", "destress", "after", "work"]),
        ("Caroline's dog", ["carolin", "s", "dog"]),
        ("我喜欢吃苹果", ["我喜", "喜欢", "欢吃", "吃苹", "苹果"]),
        ("猫", ["猫"]),
        ("iPhone手机 2023", ["iphon", "手机", "2023"]),
        ("😀 !!! ...", []),
        ("Москва", ["москва"]),  # other scripts: folded case, marks and letters kept
    ],
)
def test_index_terms(text: str, terms: list[str]) -> None:
    assert index_terms(text) == terms


def test_fold_keeps_marks_of_scripts_that_need_them() -> None:
    assert fold("É") == "e"
    assert fold("ﬁ") == "fi"  # compatibility forms are unpacked
    assert fold("हिन्दी") == "हिन्दी"


def test_bigrams_of_a_lone_character_is_the_character() -> None:
    assert bigrams("苹") == ["苹"]
    assert bigrams("苹果树") == ["苹果", "果树"]


def test_query_drops_question_and_stop_words_but_keeps_names() -> None:
    query = parse_query("What did Caroline say about her pottery class last week?")
    assert query.terms == ("carolin", "potteri", "class", "last", "week")
    assert query.names == frozenset({"carolin"})


def test_query_of_only_common_words_still_searches() -> None:
    assert parse_query("who are you").terms == ("who", "are", "you")
    assert parse_query("  ?! ").empty


def test_query_reads_dates() -> None:
    query = parse_query("What did Nate cook on 9 November, 2022?")
    assert query.periods == (Period(date(2022, 11, 9), date(2022, 11, 9)),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on 9 November, 2022", [(date(2022, 11, 9), date(2022, 11, 9))]),
        ("on November 9th 2022", [(date(2022, 11, 9), date(2022, 11, 9))]),
        ("on December 1,2023", [(date(2023, 12, 1), date(2023, 12, 1))]),
        ("since 2024-01-31", [(date(2024, 1, 31), date(2024, 1, 31))]),
        ("in March 2023", [(date(2023, 3, 1), date(2023, 3, 31))]),
        ("in Feb 2024", [(date(2024, 2, 1), date(2024, 2, 29))]),
        ("back in 2021", [(date(2021, 1, 1), date(2021, 12, 31))]),
        ("on 31 February 2023", [(date(2023, 2, 1), date(2023, 2, 28))]),  # no such day
        ("may I ask about the 5 kids", []),
    ],
)
def test_periods(text: str, expected: list[tuple[date, date]]) -> None:
    assert [(p.first, p.last) for p in periods(text)] == expected


def test_period_bounds_cover_whole_days() -> None:
    lo, hi = Period(date(2024, 1, 31), date(2024, 2, 1)).bounds_ms()
    assert hi - lo == 2 * 86_400_000 - 1


def test_edit_distance_counts_swaps_once() -> None:
    assert edit_distance("recieve", "receive", 2) == 1
    assert edit_distance("reccomend", "recommend", 2) == 2
    assert edit_distance("tennis", "piano", 1) == 2  # above the limit: limit + 1


def test_corrections_are_close_real_words_closest_first() -> None:
    vocabulary = ["restaur", "restor", "rest", "restaurant", "2023", "restaurants"]
    assert corrections("restaurnt", vocabulary) == ["restaurant", "restaur", "restaurants"]
    assert corrections("zzzz", vocabulary) == []


def test_fts_keys_are_always_quoted_data() -> None:
    assert key_expression('a"b') == '"a""b"'
    assert key_expression("paint*") == '"paint" *'
    assert owner_token(42) == "_42"
    assert scoped("agent_id", 7, "terms", ["x", "y*"]) == (
        'agent_id : "_7" AND terms : ("x" OR "y" *)'
    )
    with pytest.raises(ValueError, match="at least one key"):
        scoped("agent_id", 7, "terms", [])
