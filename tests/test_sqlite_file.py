"""The SQLite file itself: who may read it, and what a person is told when it cannot be used."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from agentcore.storage.protocols import StorageError
from agentcore.storage.sqlite import SQLiteStorage
from bots.adapter import AdapterError
from bots.instance import InstanceLock

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_companions_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = await SQLiteStorage.open(path)
    try:
        companions = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
        assert [mode(p) for p in companions] == [0o600] * 3
    finally:
        await store.close()


async def test_an_existing_database_open_to_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    await create(path)
    companions = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    for name in companions:
        name.touch()
        name.chmod(0o664)
    store = await SQLiteStorage.open(path)
    try:
        assert [mode(p) for p in companions] == [0o600] * 3
    finally:
        await store.close()


async def test_a_read_only_database_stays_read_only(tmp_path: Path) -> None:
    """Tightening takes permissions away from others; it never adds any for the owner."""
    path = tmp_path / "kept.db"
    await create(path)
    path.chmod(0o444)
    try:
        store = await SQLiteStorage.open(path)
        await store.close()
    except StorageError:
        pass  # as root, or not: what matters is the mode
    assert mode(path) == 0o400


async def create(path: Path) -> None:
    await (await SQLiteStorage.open(path)).close()


def open_database(path: str) -> str:
    try:
        asyncio.run(SQLiteStorage.open(path))
    except StorageError as exc:
        return f"StorageError: {exc}"
    return "opened"


def take_instance_lock(path: str) -> str:
    try:
        InstanceLock(Path(path)).acquire()
    except AdapterError as exc:
        return f"AdapterError: {exc}"
    return "locked"


def _as_nobody(attempt: Callable[[str], str], path: str, answer: Connection) -> None:
    """In a forked child: drop to an unprivileged user, then make the attempt."""
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    try:
        answer.send(attempt(path))
    except Exception as exc:  # anything else (a traceback for the person) is the bug
        answer.send(f"{type(exc).__name__}: {exc}")


def without_privileges(attempt: Callable[[str], str], folder: Path, inside: str) -> str:
    """What ``attempt`` says about ``folder / inside`` to a user who may not write ``folder``.
    Root may write anywhere, so as root it runs in a child process that dropped to nobody."""
    path = str(folder / inside)
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            return attempt(path)
        finally:
            folder.chmod(0o700)
    for existing in folder.iterdir():  # what is already there belongs to the user
        os.chown(existing, NOBODY, NOBODY)
    receive, send = get_context("fork").Pipe(duplex=False)
    child = get_context("fork").Process(target=_as_nobody, args=(attempt, path, send))
    child.start()
    child.join(30)
    return str(receive.recv()) if receive.poll() else f"no answer (exit {child.exitcode})"


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("inside", ["a.db", "sub/a.db"])
def test_an_unwritable_folder_is_named_as_such(inside: str, existing: bool) -> None:
    with tempfile.TemporaryDirectory() as name:  # in /tmp, which anyone may reach
        folder = Path(name)
        if existing:
            (folder / inside).parent.mkdir(exist_ok=True)
            asyncio.run(create(folder / inside))
            folder = (folder / inside).parent
            inside = "a.db"
        folder.chmod(0o755)  # others may look, not write
        said = without_privileges(open_database, folder, inside)
    assert said.startswith("StorageError: "), said
    assert "not writable" in said or "Permission denied" in said, said
    assert name in said, said


def test_the_instance_lock_names_an_unwritable_folder() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)
        said = without_privileges(take_instance_lock, folder, "a.db")
    assert said.startswith("AdapterError: cannot use "), said
    assert "Permission denied" in said and "No such file" not in said, said


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    await create(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(StorageError, match="newer than this program"):
        await SQLiteStorage.open(path)
