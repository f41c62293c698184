"""Running statements inside a unit of work (see ``connection``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

Params = Sequence[Any]


def all_rows(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    """Every row of ``sql``, the statement run to its end (so its changes are made)."""
    return conn.execute(sql, params).fetchall()


def one_row(conn: sqlite3.Connection, sql: str, params: Params = ()) -> sqlite3.Row | None:
    """The first row of ``sql`` (run to its end), or None."""
    rows = all_rows(conn, sql, params)
    return rows[0] if rows else None
