"""Reading a search query: which terms to look for, which names it mentions, which dates."""

from __future__ import annotations

from dataclasses import dataclass

from agentcore.search.analysis import joined_term, part_terms, surface_words, word_parts
from agentcore.search.dates import Period, periods

MAX_TERMS = 32  # a pasted essay should not become a 2,000-term query

# English function words; the lone letters are what apostrophes leave ("don't" → "don", "t").
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

# Words that say what kind of answer is wanted, or that a question is about a past conversation,
# rather than what it is about: "what did she say about her trip" is about "trip".
QUESTION_WORDS = frozenset(
    """
    also anything can did do does else ever etc how kind likely many may might much must
    shall something sort thing things type via what whatever when whenever where wherever
    which who whoever whom whose why will would could should has have had is are was were
    say says said tell told mention mentioned mentions talk talked discuss discussed recall
    remember remembered conversation conversations chat chatted message messages
    """.split()
)
IGNORED = STOPWORDS | QUESTION_WORDS
# Capitalised, but not names: "in March", "on Friday".
CALENDAR_WORDS = frozenset(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday
    friday saturday sunday today tomorrow yesterday
    """.split()
)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    terms: tuple[str, ...]  # distinct index terms to match, in query order
    names: frozenset[str]  # terms of capitalised words: people, places, titles
    periods: tuple[Period, ...]  # absolute dates the query mentions

    @property
    def empty(self) -> bool:
        return not self.terms


def parse_query(text: str) -> SearchQuery:
    """Analyse ``text`` the way stored messages are analysed, minus the words that carry no topic.

    If every word is ignorable ("who are you"), they are searched for after all.
    """
    content: dict[str, None] = {}
    fallback: dict[str, None] = {}
    names: set[str] = set()
    for word in surface_words(text):
        parts = word_parts(word)
        wanted = [p for p in parts if p not in IGNORED]
        for part in parts:
            for term in part_terms(part):
                (content if part in wanted else fallback).setdefault(term, None)
        joined = joined_term(word, parts)
        if joined is not None:
            (content if wanted else fallback).setdefault(joined, None)
        if wanted and _looks_like_a_name(word):
            names.update(t for p in wanted if p not in CALENDAR_WORDS for t in part_terms(p))
    chosen = list(content or fallback)[:MAX_TERMS]
    return SearchQuery(tuple(chosen), frozenset(names & set(chosen)), tuple(periods(text)))


def _looks_like_a_name(word: str) -> bool:
    """Capitalised ("Caroline", "McDonald") or an acronym ("LGBTQ"); not a number."""
    return word[:1].isupper() and not word.isdigit()
