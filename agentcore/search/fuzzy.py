"""Misspelt query words: find the real words they were meant to be."""

from __future__ import annotations

from collections.abc import Iterable

MIN_CHARS = 4  # shorter words have too many one-letter neighbours to guess from


def max_edits(term: str) -> int:
    """How many typing slips a term of this length may carry."""
    return 1 if len(term) < 8 else 2


def can_be_misspelt(term: str) -> bool:
    return len(term) >= MIN_CHARS and term.isalpha()


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count once), or ``limit + 1`` if above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit and min(previous) >= limit:  # no later row can come back down
            return limit + 1
        before, previous = previous, current
    return min(previous[len(b)], limit + 1)


def corrections(term: str, vocabulary: Iterable[str]) -> list[str]:
    """Known terms within ``max_edits(term)`` typing slips of ``term``, closest first."""
    limit = max_edits(term)
    scored = [
        (distance, known)
        for known in vocabulary
        if known != term and known.isalpha()
        for distance in (edit_distance(term, known, limit),)
        if distance <= limit
    ]
    return [known for _, known in sorted(scored)]
