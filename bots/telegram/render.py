"""The model's Markdown → Telegram's HTML parse mode, and message parts that fit Telegram.

Telegram's HTML is strict: every ``<``, ``>`` and ``&`` that is not markup must be escaped and
every tag closed. So this converter only emits markup it opened and closed itself, and anything
it does not recognise stays literal (escaped) text. It understands what chat models write most:
``**bold**``/``__bold__``, ``*italic*``/``_italic_``, ``~~strike~~``, ```` `code` ````, fenced
code blocks with a language, ``[links](https://...)``, ``# headings`` (bold), ``- bullets`` (•)
and ``> quotes``. Rendering only removes characters, so a part's visible text is never longer
than its Markdown.

Replies are split as Markdown (``bots.text.split_message``: paragraph, line, sentence
boundaries; code fences closed and reopened) before rendering, so each part renders on its own.
"""

from __future__ import annotations

import html
import re

from bots.text import split_message

MAX_MESSAGE = 4096  # Telegram's limit, in UTF-16 code units of visible text

_FENCE_OPEN_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)")
_FENCE_CLOSE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_LANGUAGE_RE = re.compile(r"^[\w+#.-]{1,32}$")
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_BULLET_RE = re.compile(r"^([ \t]*)[-*+][ \t]+(?=\S)")
_QUOTE_RE = re.compile(r"^ {0,3}>[ \t]?")
_INLINE_RE = re.compile(
    r"""
      (?P<ticks>`+)(?P<code>.+?)(?P=ticks)
    | \[(?P<label>[^\]\n]+)\]\((?P<url>(?:https?|tg|mailto):[^\s()<>]+)\)
    | \*\*(?P<bold>[^\s*](?:.*?[^\s*])?)\*\*
    | (?<!\w)__(?P<bold2>[^\s_](?:.*?[^\s_])?)__(?!\w)
    | ~~(?P<strike>[^\s~](?:.*?[^\s~])?)~~
    | (?<![\w*])\*(?P<italic>[^\s*](?:.*?[^\s*])?)\*(?![\w*])
    | (?<!\w)_(?P<italic2>[^\s_](?:.*?[^\s_])?)_(?!\w)
    """,
    re.VERBOSE,
)
_TAGS = {"bold": "b", "bold2": "b", "strike": "s", "italic": "i", "italic2": "i"}


def telegram_parts(markdown: str, limit: int = MAX_MESSAGE) -> list[str]:
    """``markdown`` split into parts whose text fits in one Telegram message.

    ``split_message`` counts characters, Telegram counts UTF-16 code units (an emoji is two),
    so in the rare text where that matters the split is redone with a smaller budget.
    """
    budget = limit
    while True:
        parts = split_message(markdown, budget)
        if budget == 64 or all(utf16_len(p) <= limit for p in parts):
            return parts
        budget = max(64, budget * 3 // 4)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def to_html(markdown: str) -> str:
    """Render one part of a reply as Telegram HTML (see the module docstring)."""
    lines = markdown.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _FENCE_OPEN_RE.match(lines[i]):
            block, i = _code_block(lines, i)
        elif _QUOTE_RE.match(lines[i]):
            block, i = _quote(lines, i)
        else:
            block, i = _line(lines[i]), i + 1
        out.append(block)
    return "\n".join(out)


def _code_block(lines: list[str], start: int) -> tuple[str, int]:
    """A fenced block from ``lines[start]``; an unclosed fence runs to the end of the text."""
    opener = _FENCE_OPEN_RE.match(lines[start])
    assert opener is not None
    marker, language = opener.group(1), opener.group(2)
    end = start + 1
    while end < len(lines):
        closer = _FENCE_CLOSE_RE.match(lines[end])
        if closer and closer.group(1)[0] == marker[0] and len(closer.group(1)) >= len(marker):
            break
        end += 1
    code = html.escape("\n".join(lines[start + 1 : end]), quote=False)
    if _LANGUAGE_RE.match(language):
        block = f'<pre><code class="language-{html.escape(language)}">{code}</code></pre>'
    else:
        block = f"<pre>{code}</pre>"
    return block, end + 1


def _quote(lines: list[str], start: int) -> tuple[str, int]:
    end = start
    while end < len(lines) and _QUOTE_RE.match(lines[end]):
        end += 1
    inner = [_line(_QUOTE_RE.sub("", line, count=1)) for line in lines[start:end]]
    return "<blockquote>" + "\n".join(inner) + "</blockquote>", end


def _line(line: str) -> str:
    heading = _HEADING_RE.match(line)
    if heading:
        return "<b>" + inline(heading.group(1)) + "</b>"
    bullet = _BULLET_RE.match(line)
    if bullet:
        return bullet.group(1) + "• " + inline(line[bullet.end() :])
    return inline(line)


def inline(text: str) -> str:
    """Inline Markdown of one line → HTML; the leftmost construct wins, unknown text is escaped."""
    out: list[str] = []
    position = 0
    for match in _INLINE_RE.finditer(text):
        out.append(html.escape(text[position : match.start()], quote=False))
        out.append(_inline_markup(match))
        position = match.end()
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def _inline_markup(match: re.Match[str]) -> str:
    if match.group("code") is not None:
        return "<code>" + html.escape(match.group("code"), quote=False) + "</code>"
    if match.group("url") is not None:
        href = html.escape(match.group("url"), quote=True)
        return f'<a href="{href}">' + inline(match.group("label")) + "</a>"
    name = next(name for name in _TAGS if match.group(name) is not None)
    tag = _TAGS[name]
    return f"<{tag}>" + inline(match.group(name)) + f"</{tag}>"
