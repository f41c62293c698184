"""What the search index stores for a row: its analysed terms, space-separated.

Every backend stores these beside the text and indexes them, so the index, the re-ranker and
every storage backend agree on what a word is (see ``analysis``).
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.messages import Role
from agentcore.search.analysis import index_terms

SEARCHABLE_ROLES = frozenset({Role.USER, Role.ASSISTANT})


def message_terms(role: Role, content: str | None) -> str | None:
    """A message's index terms, or None for rows that are not searchable (tool calls and
    results, system notes)."""
    if role not in SEARCHABLE_ROLES or content is None:
        return None
    return " ".join(index_terms(content))


def passage_terms(content: str, tags: Sequence[str]) -> str:
    """An archival passage's index terms: its text's terms, then its tags'."""
    return " ".join(index_terms(content) + index_terms(" ".join(tags)))


def stored_passage_terms(
    content: str, tags: Sequence[str], source: str = "", page: int | None = None
) -> str:
    """A stored passage's index terms, on every backend: a note's (``passage_terms``), or for
    one read from a document its text's, then its file name's and its page ("page 200"), so
    "page 200 of the report" finds it."""
    if page is None:
        return passage_terms(content, tags)
    return passage_terms(content, (source, f"page {page}"))
