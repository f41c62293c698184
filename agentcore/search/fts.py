"""Building FTS5 MATCH expressions that no user text can break.

Index terms come from ``agentcore.search.analysis`` and are matched as quoted strings, so every
character of them is data, never FTS5 syntax. A key ending in ``*`` is a prefix query.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(term: str) -> str:
    """An FTS5 string literal: the whole term is data, never syntax."""
    return '"' + term.replace('"', '""') + '"'


def key_expression(key: str) -> str:
    """``"paint"`` for a term, ``"paint" *`` for a prefix key (``"paint*"``)."""
    if key.endswith("*") and len(key) > 1:
        return quote(key[:-1]) + " *"
    return quote(key)


def owner_token(owner_id: int) -> str:
    """How an owner id is indexed: ``_42``. Text terms never contain ``_``, so the owner's
    doclist holds exactly the owner's rows (see migration 0002)."""
    return f"_{owner_id}"


def scoped(owner_column: str, owner_id: int, text_column: str, keys: Sequence[str]) -> str:
    """Match any of ``keys`` in ``text_column`` among rows whose ``owner_column`` is ``owner_id``.

    The owner is part of what the index matches, so FTS5 intersects two doclists instead of
    ranking every user's rows and filtering afterwards.
    """
    if not keys:
        raise ValueError("a full-text match needs at least one key")
    alternatives = " OR ".join(key_expression(k) for k in keys)
    owner = quote(owner_token(owner_id))
    return f"{owner_column} : {owner} AND {text_column} : ({alternatives})"
