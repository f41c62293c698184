"""The SQLite connections: a transaction is all or nothing, and no other task's statement ever
runs inside it (a write would be undone by its rollback, a read would see its old snapshot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from agentcore.storage.protocols import StorageError
from agentcore.storage.sqlite.connection import Database


async def notes_table(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"
    )


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "notes.db")


@pytest.fixture
async def db(path: str) -> AsyncIterator[Database]:
    database = await Database.open(path, 5000, notes_table)
    yield database
    await database.close()


async def texts(db: Database) -> list[str]:
    return [r["text"] for r in await db.fetch("SELECT text FROM notes ORDER BY id")]


async def add(db: Database, text: str) -> None:
    await db.execute("INSERT INTO notes (text) VALUES (?)", (text,))


class Paused:
    """A unit of work that writes or reads, then waits to be let go (to hold its transaction
    open while the test does something else)."""

    def __init__(self, sql: str, *, fail: bool = False) -> None:
        self.sql = sql
        self.fail = fail
        self.inside = asyncio.Event()
        self.finish = asyncio.Event()

    async def __call__(self, conn: aiosqlite.Connection) -> list[str]:
        before = [r["text"] for r in await conn.execute_fetchall(self.sql)]
        self.inside.set()
        await self.finish.wait()
        if self.fail:
            raise RuntimeError("changed my mind")
        after = [r["text"] for r in await conn.execute_fetchall("SELECT text FROM notes")]
        return before + after


async def test_a_failed_transaction_writes_nothing(db: Database) -> None:
    async def half(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO notes (text) VALUES ('first')")
        await conn.execute("INSERT INTO notes (text) VALUES (NULL)")

    with pytest.raises(StorageError, match="NOT NULL"):
        await db.write(half)
    await add(db, "after")
    assert await texts(db) == ["after"]


async def test_a_write_waits_for_the_transaction_under_way(db: Database) -> None:
    doomed = Paused("INSERT INTO notes (text) VALUES ('doomed') RETURNING text", fail=True)
    first = asyncio.create_task(db.write(doomed))
    await doomed.inside.wait()
    second = asyncio.create_task(add(db, "kept"))  # runs before the first task wakes up
    doomed.finish.set()
    with pytest.raises(RuntimeError, match="changed my mind"):
        await first
    await second
    assert await texts(db) == ["kept"]


async def test_a_read_waits_for_the_snapshot_under_way(db: Database) -> None:
    await add(db, "old")
    reading = Paused("SELECT text FROM notes")
    slow = asyncio.create_task(db.read(reading))
    await reading.inside.wait()
    await add(db, "new")
    fresh = asyncio.create_task(texts(db))  # runs before the slow read wakes up
    reading.finish.set()
    assert await slow == ["old", "old"]  # one snapshot from start to end
    assert await fresh == ["old", "new"]  # a write just made is seen


async def test_a_cancelled_transaction_is_rolled_back(db: Database) -> None:
    stuck = Paused("INSERT INTO notes (text) VALUES ('half') RETURNING text")
    task = asyncio.create_task(db.write(stuck))
    await stuck.inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await add(db, "next")
    assert await texts(db) == ["next"]


async def test_closing_waits_for_the_transaction_under_way(db: Database, path: str) -> None:
    late = Paused("INSERT INTO notes (text) VALUES ('late') RETURNING text")
    writing = asyncio.create_task(db.write(late))
    await late.inside.wait()
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0)  # one step of the loop: closing has begun
    late.finish.set()
    assert await writing == ["late", "late"]
    await closing
    with pytest.raises(StorageError, match="closed"):
        await add(db, "too late")
    reopened = await Database.open(path, 5000, notes_table)
    try:
        assert await texts(reopened) == ["late"]
    finally:
        await reopened.close()
