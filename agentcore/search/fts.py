"""Building FTS5 MATCH expressions that no user text can break."""

from __future__ import annotations

from agentcore.search.text import query_terms

MAX_TERMS = 32  # a pasted essay should not become a 2,000-term query


def quote(term: str) -> str:
    """An FTS5 string literal: the whole term is data, never syntax."""
    return '"' + term.replace('"', '""') + '"'


def match_any(text: str) -> str | None:
    """``"a" OR "b" OR ...`` for the query's terms, or None if it has no searchable words."""
    terms = query_terms(text)[:MAX_TERMS]
    if not terms:
        return None
    return " OR ".join(quote(t) for t in terms)


def scoped_match(owner_column: str, owner_id: int, text_columns: str, text: str) -> str | None:
    """Match ``text`` in ``text_columns`` among rows whose ``owner_column`` token is ``owner_id``.

    The owner is part of what the index matches, so FTS5 intersects two doclists instead of
    ranking every user's rows and filtering afterwards.
    """
    terms = match_any(text)
    if terms is None:
        return None
    return f"{owner_column} : {quote(str(owner_id))} AND {{{text_columns}}} : ({terms})"
