"""The text analyser: the one place that turns text into index terms.

Both sides of a search go through it, so stored messages and queries always agree: Unicode
normalisation and case folding, accents folded on Latin letters ("café" = "cafe"), English
stemming ("painting", "paints" → "paint"), hyphenated words also joined ("de-stress" also gives
"destress"), and scripts written without spaces (Chinese, Japanese, Korean) split into
overlapping character pairs, the usual way to search them without a dictionary ("喜欢吃苹果" →
"喜欢 欢吃 吃苹 苹果", so "苹果" finds it).

The stored form of a message is ``" ".join(index_terms(text))``; the full-text index and the
re-ranker both read that, so nothing is analysed twice.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

MAX_TERM_CHARS = 40  # longer "words" are URLs, hashes or key mashing: cut, not dropped

# A word, possibly with inner hyphens or apostrophes ("self-care", "don't").
_WORD_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_INNER_RE = re.compile(r"[-'’]")
# Scripts written without spaces between words: Hiragana, Katakana, CJK ideographs, Hangul.
_UNSPACED = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_SCRIPT_RUN_RE = re.compile(f"[{_UNSPACED}]+|[^{_UNSPACED}]+")
_UNSPACED_RE = re.compile(f"[{_UNSPACED}]")
_LATIN_WORD_RE = re.compile(r"[a-z]+")

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The English stem of a lower-case Latin word (other words come back unchanged)."""
    if len(word) < 3 or not _LATIN_WORD_RE.fullmatch(word):
        return word
    return str(_stemmer.stemWord(word))


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """Case-fold, and drop accents from Latin letters (other scripts keep their marks)."""
    folded = unicodedata.normalize("NFKC", word).casefold()
    if folded.isascii():
        return folded
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", folded):
        if unicodedata.combining(char) and out and out[-1].isascii():
            continue  # an accent on a Latin letter
        out.append(char)
    return unicodedata.normalize("NFKC", "".join(out))


def surface_words(text: str) -> list[str]:
    """The words of ``text`` as written (case kept), hyphenated words as one item."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text))


def word_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` as ``surface_words`` reads it (NFKC), and where each of its words is in that."""
    normal = unicodedata.normalize("NFKC", text)
    return normal, [m.span() for m in _WORD_RE.finditer(normal)]


def index_terms(text: str) -> list[str]:
    """Every term of ``text``, in order: what the index stores and a query is matched against."""
    terms: list[str] = []
    for word in surface_words(text):
        terms.extend(word_terms(word))
    return terms


def word_terms(word: str) -> list[str]:
    """The terms of one surface word (see the module docstring)."""
    parts = word_parts(word)
    terms: list[str] = []
    for part in parts:
        terms.extend(part_terms(part))
    joined = joined_term(word, parts)
    if joined is not None:
        terms.append(joined)
    return terms


def word_parts(word: str) -> list[str]:
    """A word's folded pieces between hyphens and apostrophes ("Don't" → "don", "t")."""
    return [fold(p)[:MAX_TERM_CHARS] for p in _INNER_RE.split(word) if p]


def joined_term(word: str, parts: list[str]) -> str | None:
    """A hyphenated word also written as one ("de-stress" → "destress"), or None."""
    if not 1 < len(parts) <= 3 or "'" in word or "’" in word:
        return None
    if not all(_LATIN_WORD_RE.fullmatch(p) for p in parts):
        return None
    joined = "".join(parts)
    return stem(joined) if len(joined) > 3 else None


def part_terms(part: str) -> list[str]:
    """The terms of one folded piece: a stem, or character pairs of unspaced script."""
    if not _UNSPACED_RE.search(part):
        return [stem(part)]
    terms: list[str] = []
    for run in _SCRIPT_RUN_RE.findall(part):
        if _UNSPACED_RE.match(run):
            terms.extend(bigrams(run))
        else:
            terms.append(stem(run))
    return terms


def bigrams(run: str) -> list[str]:
    """Overlapping character pairs of a run of unspaced script; a lone character stays."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]
