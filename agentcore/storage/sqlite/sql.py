"""Running statements inside a unit of work (see ``connection``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

# Positional (?) or named (:name) parameters, as sqlite3 takes them.
Params = Sequence[Any] | Mapping[str, Any]


async def all_rows(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    """Every row of ``sql``, the statement run to its end (so its changes are made)."""
    return list(await conn.execute_fetchall(sql, params))


async def one_row(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> sqlite3.Row | None:
    """The first row of ``sql`` (run to its end), or None."""
    rows = await all_rows(conn, sql, params)
    return rows[0] if rows else None
