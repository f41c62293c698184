"""The query as the vector half of a search embeds it, and the fused ranking (search.meaning)."""

from __future__ import annotations

from agentcore.search.meaning import (
    MIN_ROWS,
    RRF_K,
    VECTOR_WEIGHT,
    fuse,
    without_common_words,
)

ROWS = 100
NAMES = {"melani": 60, "carolin": 45}  # in 60 % and 45 % of the person's rows: "Name: text"
RARE = {"paint": 3, "sunris": 2, "favourit": 4}


def test_words_most_rows_hold_are_left_out_of_the_embedded_query() -> None:
    df = NAMES | RARE
    assert without_common_words("When did Melanie paint a sunrise?", df, ROWS) == (
        "When did paint a sunrise?"
    )
    # A possessive goes with its name; function words stay, they make it a question.
    assert without_common_words("What is Melanie's favourite?", df, ROWS) == "What is favourite?"
    assert without_common_words("Did Caroline and Melanie paint?", df, ROWS) == "Did and paint?"


def test_the_query_is_embedded_as_written_when_nothing_would_be_left_or_shares_are_coarse() -> None:
    df = NAMES | RARE
    assert without_common_words("Melanie?", df, ROWS) == "Melanie?"  # only the name
    assert without_common_words("What did Melanie say?", df, ROWS) == "What did Melanie say?"
    assert without_common_words("Where is Melanie now?", df, ROWS) == "Where is Melanie now?"
    few = {"melani": MIN_ROWS - 1}
    text = "When did Melanie paint?"
    assert without_common_words(text, few, MIN_ROWS - 1) == text  # too few rows to judge
    # A word at or under the share stays; a word the counts do not know stays.
    assert without_common_words(text, {"melani": 30, "paint": 1}, ROWS) == text
    assert without_common_words(text, {}, ROWS) == text


def test_fusion_ranks_rows_both_lists_found_first_and_weighs_the_lexical_list_more() -> None:
    fused = dict(fuse([1, 2, 3], [3, 4, 1]))
    assert max(fused, key=lambda i: fused[i]) == 1  # first lexically, third by meaning
    assert fused[1] == 1.0 / (RRF_K + 1) + VECTOR_WEIGHT / (RRF_K + 3)
    assert fused[2] > fused[4]  # the same rank, in the list that weighs more
    assert [i for i, _ in fuse([], [7, 8])] == [7, 8]
