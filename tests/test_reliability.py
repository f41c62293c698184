"""Process and storage faults, end to end: the bot as a subprocess (the terminal adapter) over
the fake model, killed, stopped, starved of disk, locked out, doubled up and backed up."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sqlite3
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.runtime import NOT_SET_UP, STORAGE_FAILED
from agentcore.storage.sqlite import SQLiteStorage
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import Completion, Error, FakeOpenAI, last_user
from tests.process import bot_env, run_bot, spawn_bot
from tests.test_admin_cli import admin


@dataclass
class Bot:
    proc: asyncio.subprocess.Process

    async def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def line(self) -> str:
        assert self.proc.stdout is not None
        return (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()

    async def log_line(self, needle: str) -> str:
        """Read the log until a line containing ``needle`` appears."""
        assert self.proc.stderr is not None
        while True:
            line = (await asyncio.wait_for(self.proc.stderr.readline(), 30)).decode()
            assert line, f"the log ended without {needle!r}"
            if needle in line:
                return line

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await asyncio.wait_for(self.proc.stderr.read(), 30)).decode()


@asynccontextmanager
async def running_bot(env: dict[str, str], cwd: Path, preexec: Any = None) -> AsyncIterator[Bot]:
    proc = await spawn_bot("--user", "brad", env=env, cwd=cwd, preexec=preexec)
    try:
        yield Bot(proc)
    finally:
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def user_rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        inbox = db.execute("SELECT text FROM inbox WHERE NOT claimed").fetchall()
        recall = db.execute("SELECT content FROM messages WHERE role = 'user'").fetchall()
    return [r[0] for r in recall + inbox]


async def test_sigkill_mid_turn_loses_nothing_and_the_agent_continues(tmp_path: Path) -> None:
    reached, killed = asyncio.Event(), asyncio.Event()

    async def model(body: dict[str, Any]) -> Completion:
        text = last_user(body)
        if "hang" in text:
            reached.set()
            await killed.wait()  # the model answers only after the process was killed
        seen = [m["content"] for m in body["messages"] if m["role"] == "user"]
        return Completion(content=" | ".join(seen))

    async with FakeOpenAI(model) as server:
        env = bot_env(tmp_path, server.base_url)
        async with running_bot(env, tmp_path) as bot:
            await bot.say("please hang")
            await asyncio.wait_for(reached.wait(), 30)
            bot.proc.send_signal(signal.SIGKILL)
            assert await bot.proc.wait() == -signal.SIGKILL
            killed.set()
        db = tmp_path / "bot.db"
        assert integrity(db) == "ok"
        assert user_rows(db) == ["please hang"]
        code, out, _ = await run_bot("and now?\n", env, tmp_path, "--user", "brad")
        # The killed turn is finished first (its message was taken up), then the new one.
        assert code == 0 and out == "please hang\nplease hang | and now?\n"


async def test_sigterm_lets_the_running_turn_finish_then_exits_0(tmp_path: Path) -> None:
    reached = asyncio.Event()
    release = asyncio.Event()

    async def model(body: dict[str, Any]) -> Completion:
        reached.set()
        await release.wait()
        return Completion(content="finished after all")

    async with (
        FakeOpenAI(model) as server,
        running_bot(bot_env(tmp_path, server.base_url), tmp_path) as bot,
    ):
        await bot.say("a slow question")
        await asyncio.wait_for(reached.wait(), 30)
        bot.proc.send_signal(signal.SIGTERM)
        await bot.log_line("stopping on signal")  # the model is still thinking
        release.set()
        assert await bot.line() == "finished after all\n"
        assert await asyncio.wait_for(bot.proc.wait(), 30) == 0


async def test_a_second_bot_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    async with FakeOpenAI(lambda body: Completion(content="hi")) as server:
        env = bot_env(tmp_path, server.base_url)
        async with running_bot(env, tmp_path) as first:
            await first.say("hello")
            assert await first.line() == "hi\n"
            code, out, err = await run_bot("hello\n", env, tmp_path)
            assert code == 1 and out == ""
            assert f"another bot process (pid {first.proc.pid}) is already running" in err
            assert "Traceback" not in err
        code, out, _ = await run_bot("hello\n", env, tmp_path)  # the lock died with it
        assert code == 0 and out == "hi\n"


async def test_database_files_are_private(tmp_path: Path) -> None:
    async with FakeOpenAI(lambda body: Completion(content="hi")) as server:
        env = bot_env(tmp_path, server.base_url)
        async with running_bot(env, tmp_path) as bot:
            await bot.say("hello")
            await bot.line()
            for name in ("bot.db", "bot.db-wal", "bot.db-shm", "bot.db.lock"):
                mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
                assert mode == 0o600, (name, oct(mode))


async def test_api_key_never_reaches_logs_even_when_the_server_echoes_it(
    tmp_path: Path,
) -> None:
    key = "sk-live-0123456789abcdefSECRET"

    def model(body: dict[str, Any]) -> Error:
        return Error(401, f"Incorrect API key provided: {key}")

    async with FakeOpenAI(model) as server:
        env = bot_env(tmp_path, server.base_url, OPENAI_API_KEY=key, AGENTCORE_LOG_LEVEL="DEBUG")
        code, out, err = await run_bot("hello\n/export\n", env, tmp_path, "--user", "brad")
    assert code == 0
    assert out.startswith(NOT_SET_UP)
    assert "model call failed" in err and "***" in err
    assert key not in err and key not in out
    exported = next(tmp_path.glob("memory-console-*.af")).read_text()
    assert key not in exported


async def test_online_backup_while_running_restores_the_same_memories(tmp_path: Path) -> None:
    def model(body: dict[str, Any]) -> Completion:
        if body["messages"][-1]["role"] == "tool":
            return Completion(content="saved")
        if last_user(body).startswith("remember"):
            text = last_user(body)
            return Completion(
                tool_calls=[("core_memory_append", {"label": "human", "content": text})]
            )
        return Completion(content="ok")

    async with FakeOpenAI(model) as server:
        env = bot_env(tmp_path, server.base_url)
        async with running_bot(env, tmp_path) as bot:
            await bot.say("remember I keep bees")
            assert await bot.line() == "saved\n"
            backup = tmp_path / "backups" / "copy.db"
            code, out, _ = await admin(env, "backup", str(backup))
            assert code == 2 and f"There is no folder {backup.parent}; create it" in out
            assert not backup.parent.exists()  # no folder tree made behind the operator's back
            backup.parent.mkdir()
            code, out, err = await admin(env, "backup", str(backup))
            assert code == 0, err
            assert f"Backed up the database to {backup}" in out
            code, out, _ = await admin(env, "backup", str(backup))
            assert code == 2 and "exists already" in out
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and integrity(backup) == "ok"
        restored = bot_env(tmp_path, server.base_url, AGENTCORE_DB=str(backup))
        code, out, _ = await run_bot("/memory\n", restored, tmp_path, "--user", "brad")
        assert "remember I keep bees" in out


async def test_a_locked_database_gets_a_short_message_and_recovers(
    db_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = await SQLiteStorage.open(db_path, busy_timeout_ms=100)
    runtime = build_runtime(make_settings(), storage, FunctionLLM(lambda r: reply("fine")), clock)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for too long
    answer = await runtime.handle(message(clock, "hello"))
    assert answer.text == STORAGE_FAILED
    assert "storage failed for console:brad" in caplog.text and "locked" in caplog.text
    other.execute("COMMIT")
    other.close()
    assert (await runtime.handle(message(clock, "hello again"))).text == "fine"
    await runtime.shutdown()
    assert integrity(db_path) == "ok"


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


async def test_a_full_disk_gets_a_short_message_and_no_corruption(tmp_path: Path) -> None:
    async with FakeOpenAI(lambda body: Completion(content="ok")) as server:
        env = bot_env(tmp_path, server.base_url)
        assert (await run_bot("hello\n", env, tmp_path))[0] == 0  # create the database
        db = tmp_path / "bot.db"
        limit = db.stat().st_size + 200_000  # files may not grow past this: a full disk
        async with running_bot(env, tmp_path, _limit_file_size(limit)) as bot:
            answers = []
            for i in range(8):
                await bot.say(f"{i} " + "x" * 60_000)
                answers.append(await bot.line())
            assert "ok\n" in answers
            assert STORAGE_FAILED + "\n" in answers
            assert bot.proc.stdin is not None
            bot.proc.stdin.close()
            assert await asyncio.wait_for(bot.proc.wait(), 30) == 0
            err = await bot.stderr()
        assert "storage failed" in err and "Traceback" not in err
        assert integrity(db) == "ok"
        code, out, _ = await run_bot("still fine?\n", env, tmp_path)
        assert code == 0 and out == "ok\n"


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


async def test_a_read_only_database_stops_the_start_with_one_clear_line(tmp_path: Path) -> None:
    """A database that turns read-only while the bot runs fails writes exactly as a full disk
    does (above); one that is read-only at start is refused before any message is taken."""
    volume = tmp_path / "volume"
    volume.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(volume)):
        pytest.skip("needs permission to mount a tmpfs (to make the database read-only)")
    try:
        async with FakeOpenAI(lambda body: Completion(content="ok")) as server:
            env = bot_env(tmp_path, server.base_url, AGENTCORE_DB=str(volume / "bot.db"))
            assert await run_bot("hello\n", env, tmp_path) == (0, "ok\n", ANY)
            assert _mount("-o", "remount,ro", str(volume))
            code, out, err = await run_bot("hello\n", env, tmp_path)
            assert (code, out) == (2, "")  # the database setting cannot be used, as a bad one
            [line] = [line for line in err.splitlines() if "ERROR" in line]
            assert "cannot open the database at" in line and "writable" in line
            assert "Traceback" not in err
            assert _mount("-o", "remount,rw", str(volume))
            assert integrity(volume / "bot.db") == "ok"
            assert (await run_bot("again\n", env, tmp_path))[:2] == (0, "ok\n")
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)
