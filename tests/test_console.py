"""``python -m bots`` as a terminal chat, run as a real subprocess against the fake model."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcore.runtime import SLOW_DOWN
from agentcore.types import Attachment
from bots.console.adapter import save_private
from tests.fakes.openai_server import FakeOpenAI
from tests.process import bot_env, remembering_model, run_bot, spawn_bot


async def test_remembered_across_processes_from_any_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    async with FakeOpenAI(remembering_model) as server:
        env = bot_env(tmp_path, server.base_url)
        code, out, err = await run_bot("My name is Brad\n", env, elsewhere, "--user", "brad")
        assert code == 0, err
        assert out == "Nice to meet you!\n"
        code, out, err = await run_bot("What is my name?\n", env, tmp_path, "--user", "brad")
        assert code == 0, err
        assert out == "Your name is Brad.\n"
        code, out, _ = await run_bot("What is my name?\n", env, tmp_path, "--user", "someone")
        assert out == "I don't know yet.\n"  # another local user has their own agent
    assert re.search(
        r"startup: imports=\d+ms config=\d+ms db=\d+ms llm=\d+ms console=\d+ms "
        r"total=\d+ms rss=\d+\.\dMB",
        err,
    ), err


async def test_every_piped_line_is_answered_in_order_then_exit_0(tmp_path: Path) -> None:
    lines = [f"line {i}" for i in range(5)]
    async with FakeOpenAI(remembering_model) as server:
        code, out, err = await run_bot(
            "\n".join(lines) + "\n\n/help\n/memory\n", bot_env(tmp_path, server.base_url), tmp_path
        )
    assert code == 0, err
    answers = out.splitlines()
    assert answers[:5] == [f"echo: {line}" for line in lines]
    assert "/memory" in out and "**human**" in out and "**persona**" in out
    with sqlite3.connect(tmp_path / "bot.db") as db:
        stored = [r[0] for r in db.execute("SELECT content FROM messages WHERE role = 'user'")]
    assert stored == lines


async def test_lines_over_the_rate_limit_are_answered_before_exit(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "", AGENTCORE_RUNTIME__RATE_LIMIT_PER_MINUTE="2")
    async with FakeOpenAI(remembering_model) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        code, out, err = await run_bot("a\nb\nc\nd\n", env, tmp_path)
    assert code == 0, err
    assert out.splitlines() == ["echo: a", "echo: b", SLOW_DOWN, "echo: d"]  # c and d together
    with sqlite3.connect(tmp_path / "bot.db") as db:
        stored = [r[0] for r in db.execute("SELECT content FROM messages WHERE role = 'user'")]
        assert stored == ["a", "b", "c", "d"]
        assert db.execute("SELECT COUNT(*) FROM inbox WHERE NOT claimed").fetchone() == (0,)


async def test_missing_model_configuration_is_one_clear_line(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "")
    del env["OPENAI_BASE_URL"]
    code, out, err = await run_bot("hi\n", env, tmp_path)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: no model endpoint configured: set OPENAI_API_KEY (for OpenAI), or "
        "OPENAI_BASE_URL for a local server such as Ollama at http://localhost:11434/v1"
    ]


async def test_unreachable_model_gives_a_short_message(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1", AGENTCORE_LLM__MAX_RETRIES="0")
    code, out, err = await run_bot("hello\n", env, tmp_path)
    assert code == 0
    assert out == "I couldn't reach my language model, please try again in a moment.\n"
    assert "Traceback" not in err and "model call failed" in err
    with sqlite3.connect(tmp_path / "bot.db") as db:
        assert db.execute("SELECT content FROM messages").fetchall() == [("hello",)]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--user", "eve\x1b[2J"), "error: --user: the name may not hold control characters"),
        (("--user", "e" * 65), "error: --user: a name of at most 64 characters, please"),
        (("--config", "."), "cannot be read (Is a directory); check --config"),
    ],
)
async def test_bad_arguments_are_one_line(tmp_path: Path, args: tuple[str, str], line: str) -> None:
    code, out, err = await run_bot(
        "hi\n", bot_env(tmp_path, "http://127.0.0.1:9/v1"), tmp_path, *args
    )
    assert code == 2 and out == ""
    [only] = err.strip().splitlines()
    assert line in only and only.startswith("error: ")


async def test_an_export_is_private_and_stays_in_the_working_folder(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    (work / f"memory-console-{today}.af").symlink_to(target)  # a trap at the usual name
    async with FakeOpenAI(remembering_model) as server:
        env = bot_env(tmp_path, server.base_url)
        code, out, err = await run_bot("hello\n/export\n", env, work, "--user", "../../etc/evil")
    assert code == 0, err
    saved = work / f"memory-console-{today}-1.af"
    assert out.splitlines()[-1] == f"(saved {saved})"
    assert target.read_text() == "keep me"  # the link was not followed
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["agents"][0]["name"] == "console:../../etc/evil"
    assert sorted(p.name for p in tmp_path.rglob("*.af")) == sorted(
        [f"memory-console-{today}.af", saved.name]
    )


async def test_a_closed_output_pipe_ends_the_chat_quietly(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # `python -m bots | head -1` after head has exited
    async with FakeOpenAI(remembering_model) as server:
        proc = await spawn_bot(env=bot_env(tmp_path, server.base_url), cwd=tmp_path, stdout=writer)
        os.close(writer)
        _, err = await asyncio.wait_for(proc.communicate(b"one\ntwo\n"), 60)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_exports_are_saved_under_a_safe_name_and_never_replace_a_file(tmp_path: Path) -> None:
    hostile = Attachment("../../.bashrc x\x1b.af", b"{}", "application/json")
    first = save_private(tmp_path, hostile)
    assert first == tmp_path / "bashrc_x_.af"
    assert save_private(tmp_path, hostile) == tmp_path / "bashrc_x_-1.af"
    assert save_private(tmp_path, Attachment("...", b"", "x")) == tmp_path / "export"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600


async def test_what_files_hold_never_reaches_the_log_even_at_debug(tmp_path: Path) -> None:
    """Read, refused and broken files alike: the operator's log (at its most detailed) says
    what happened, never what a file held."""
    secret = "Xylophone-4417-secret"
    (tmp_path / "notes.txt").write_text(f"{secret} in a text file")
    (tmp_path / "bad.pdf").write_bytes(f"%PDF-1.4 {secret}".encode())
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8" + secret.encode())
    lines = "".join(f"/attach {tmp_path / name}\n" for name in ("notes.txt", "bad.pdf", "bad.jpg"))
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1", AGENTCORE_LOG_LEVEL="DEBUG")
    async with FakeOpenAI(remembering_model) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        code, out, err = await run_bot(lines, env, tmp_path, "--user", "brad")
    assert code == 0, err
    assert "bad.pdf seems to be damaged" in out
    assert " DEBUG " in err  # the most detailed log, and still:
    assert secret not in err and secret.encode().hex() not in err


async def test_attach_sends_a_file_like_the_chat_platforms(tmp_path: Path) -> None:
    notes = tmp_path / "my notes.md"
    notes.write_text("The spare key is under the blue flowerpot.")
    lines = f'/attach "{notes}" keep this\n/attach {tmp_path}/missing.pdf\n/documents\n'
    async with FakeOpenAI(remembering_model) as server:
        code, out, err = await run_bot(lines, bot_env(tmp_path, server.base_url), tmp_path)
    assert code == 0, err
    assert "echo: [document: my notes.md, 1 part;" in out and "keep this" in out
    assert f"Cannot attach: no such file: {tmp_path}/missing.pdf" in out
    assert "1. my notes.md —" in out
    with sqlite3.connect(tmp_path / "bot.db") as db:
        [(content,)] = db.execute("SELECT content FROM passages").fetchall()
    assert content == "The spare key is under the blue flowerpot."


async def test_the_start_up_log_says_how_search_runs(tmp_path: Path) -> None:
    async with FakeOpenAI(remembering_model) as server:
        env = bot_env(tmp_path, server.base_url)
        code, out, err = await run_bot("My name is Brad\n", env, tmp_path, "--user", "brad")
        assert code == 0 and out == "Nice to meet you!\n", err
        assert "search: lexical only (set [search] embedding_model" in err
        env["AGENTCORE_SEARCH__EMBEDDING_MODEL"] = "fake-embed"
        code, out, err = await run_bot("What is my name?\n", env, tmp_path, "--user", "brad")
        assert code == 0 and out == "Your name is Brad.\n", err
        assert f"search: hybrid, words and meaning (fake-embed at {server.base_url})" in err
