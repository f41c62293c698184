"""Markdown → Telegram HTML, and parts that fit one Telegram message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.telegram.render import MAX_MESSAGE, telegram_parts, to_html, utf16_len
from tests.fakes.telegram_server import parse_html


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold** and __also bold__", "<b>bold</b> and <b>also bold</b>"),
        ("*italic* and _also italic_", "<i>italic</i> and <i>also italic</i>"),
        ("~~gone~~", "<s>gone</s>"),
        ("use `x < y && z` here", "use <code>x &lt; y &amp;&amp; z</code> here"),
        ("``a ` b``", "<code>a ` b</code>"),
        ("[docs](https://x.org/a?b=1&c=2)", '<a href="https://x.org/a?b=1&amp;c=2">docs</a>'),
        ("**bold with *italic* inside**", "<b>bold with <i>italic</i> inside</b>"),
        ("# Title", "<b>Title</b>"),
        ("## Sub **title** ##", "<b>Sub <b>title</b></b>"),
        ("- one\n* two\n  + three", "• one\n• two\n  • three"),
        ("> quoted\n> **twice**\nafter", "<blockquote>quoted\n<b>twice</b></blockquote>\nafter"),
        ("1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"),
    ],
)  # fmt: skip
def test_inline_and_line_markup(markdown: str, expected: str) -> None:
    assert to_html(markdown) == expected


@pytest.mark.parametrize(
    "literal",
    [
        "snake_case_name and a_b_c",
        "2 * 3 * 4 = 24",
        "a ** b",
        "[not a link](javascript:alert(1))",
        "[relative](/path)",
        "unclosed **bold",
        "<script>alert('x')</script>",
        "price: 5$ & tax",
        "- ",
    ],
)
def test_unknown_or_unsafe_markup_stays_literal(literal: str) -> None:
    rendered = to_html(literal)
    plain, _ = parse_html(rendered)
    assert plain == literal
    assert "<a" not in rendered


def test_code_block_with_language_is_escaped_and_not_formatted() -> None:
    markdown = "Look:\n```python\nif a < b and **kw:\n    print('&')\n```\nDone."
    assert to_html(markdown) == (
        "Look:\n"
        '<pre><code class="language-python">if a &lt; b and **kw:\n'
        "    print('&amp;')</code></pre>\n"
        "Done."
    )


def test_code_block_without_language_and_unclosed_fence() -> None:
    assert to_html("```\nraw *text*\n```") == "<pre>raw *text*</pre>"
    assert to_html("~~~\nstill code") == "<pre>still code</pre>"
    assert to_html('```"><b>\nx\n```') == "<pre>x</pre>"  # a hostile info string is dropped


def test_a_longer_fence_is_not_closed_by_a_shorter_one() -> None:
    assert to_html("````md\n```\ninner\n```\n````") == (
        '<pre><code class="language-md">```\ninner\n```</code></pre>'
    )


markdownish = st.lists(
    st.sampled_from([*"ab _*~`[]()#>-+!<&\"'\n", "```", "https://x.y", "😀", "é"]),
    max_size=120,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(markdownish)
def test_property_any_text_renders_to_html_telegram_accepts(markdown: str) -> None:
    plain, _ = parse_html(to_html(markdown))  # raises on markup Telegram would refuse
    assert len(plain) <= len(markdown)  # so a part within the limit stays within it


def test_parts_fit_telegram_and_keep_the_text() -> None:
    text = ("A paragraph that goes on. " * 40 + "\n\n") * 12
    parts = telegram_parts(text)
    assert len(parts) >= 3
    assert all(utf16_len(p) <= MAX_MESSAGE for p in parts)
    assert "\n".join(parts).split() == text.split()


def test_parts_count_emoji_as_two_utf16_units() -> None:
    text = "😀 " * 3000  # 6,000 characters, 9,000 UTF-16 units
    parts = telegram_parts(text)
    assert all(utf16_len(p) <= MAX_MESSAGE for p in parts)
    assert "\n".join(parts).split() == text.split()
