"""The English stopword list, and a plain lower-case word splitter.

Search itself analyses text with ``analysis.py``; ``query.py`` uses the stopwords here.
"""

from __future__ import annotations

import re

# Letters, digits and marks of any script; everything else separates words. Apostrophes inside
# words ("don't") separate too, matching SQLite's unicode61 tokenizer.
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves s t don ll ve re d m o y
    """.split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``, in order."""
    return [w.lower() for w in _WORD_RE.findall(text)]


def query_terms(text: str) -> list[str]:
    """The distinct words of a query worth searching for.

    Stopwords are dropped unless nothing else is left ("who are you" still searches).
    """
    seen: dict[str, None] = {}
    for word in words(text):
        seen.setdefault(word, None)
    terms = list(seen)
    content = [t for t in terms if t not in STOPWORDS]
    return content or terms
