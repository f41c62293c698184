"""Splitting long replies: limits, boundaries, balanced code fences, nothing lost."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bots.text import split_message

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*$", re.MULTILINE)


def visible(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_short_text_is_one_part() -> None:
    assert split_message("hello", 2000) == ["hello"]


def test_prefers_paragraph_then_line_then_sentence() -> None:
    para = "a" * 60 + "\n\n" + "b" * 60
    assert split_message(para, 100) == ["a" * 60, "b" * 60]
    lines = "c" * 60 + "\n" + "d" * 60
    assert split_message(lines, 100) == ["c" * 60, "d" * 60]
    sentences = "First sentence here is long enough. " * 3
    parts = split_message(sentences, 100)
    assert all(p.endswith(".") for p in parts)


def test_9000_chars_with_code_block_has_balanced_fences() -> None:
    text = (
        "Intro. " * 200
        + "\n\n```python\n"
        + "\n".join(f"print({i})" for i in range(700))
        + "\n```\n\nThe end."
    )
    assert len(text) > 9000
    for limit in (2000, 4096):
        parts = split_message(text, limit)
        assert len(parts) >= 2 and all(len(p) <= limit for p in parts)
        for part in parts:
            assert len(FENCE.findall(part)) % 2 == 0, part[:80]
        assert all(p.startswith("```python") for p in parts[1:-1] if "print(" in p[:30])
        joined = "".join(parts).replace("```python", "").replace("```", "")
        assert visible(joined) == visible(text.replace("```python", "").replace("```", ""))


def test_one_long_word_is_cut_hard() -> None:
    parts = split_message("x" * 250, 100)
    assert "".join(parts) == "x" * 250 and all(len(p) <= 100 for p in parts)


def test_tiny_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        split_message("hi", 10)


_chunks = st.sampled_from(
    ["word", " ", "\n", "\n\n", ". ", "```", "```py\n", "\n```\n", "~~~", "é", "😀", "猫", "x" * 70]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_chunks, max_size=300), st.sampled_from([64, 100, 2000]))
def test_property_limits_order_and_fences(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    # A fence line longer than a whole part cannot stay whole; that is not worth testing.
    assume(all(len(m.group(0)) < limit // 2 for m in FENCE.finditer(text)))
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    # Nothing but whitespace and the fences we add is lost or invented.
    original = visible(FENCE.sub("", text))
    rebuilt = visible("".join(FENCE.sub("", p) for p in parts))
    assert rebuilt == original


@pytest.mark.parametrize(
    "text",
    [
        "word" * 6 + "\n\n" + "x" * 70 + "```word",  # a hard cut right before inline backticks
        "word" * 2 + "\n\n. ``````~~~" + "x" * 70 + "``````",
        "    ```",  # indented four spaces: not a fence, and stripping must not make it one
    ],
)
def test_a_split_never_turns_inline_backticks_into_a_fence(text: str) -> None:
    parts = split_message(text, 100 if len(text) > 64 else 64)
    assert all(len(p) <= 100 for p in parts)
    assert visible("".join(FENCE.sub("", p) for p in parts)) == visible(FENCE.sub("", text))
