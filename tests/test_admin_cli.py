"""``python -m bots admin ...`` as a real subprocess, beside a running bot on the same file."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import asyncpg

from agentcore.clock import SystemClock
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.storage.postgres import PostgresStorage
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.fakes.openai_server import Completion, FakeOpenAI, system
from tests.process import bot_env, run_bot, spawn_bot


async def admin(env: dict[str, str], *words: str) -> tuple[int, str, str]:
    env = {k: v for k, v in env.items() if not k.startswith("OPENAI")}  # no model needed
    proc = await spawn_bot("admin", *words, env=env, stdin=False)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def brad_said_hi(database: Path) -> None:
    """A bot database where console:brad has said hi (built in-process: quicker than a bot)."""
    storage, clock = await SQLiteStorage.open(database), SystemClock()
    runtime = build_runtime(make_settings(), storage, FunctionLLM(lambda r: reply("hi")), clock)
    await runtime.handle(message(clock, "hi"))
    await runtime.shutdown()


def echo_memory(body: dict[str, Any]) -> Completion:
    """Answers with the human block the model was shown."""
    human = system(body).split("<human>")[1]
    return Completion(content=human.split("<value>")[1].split("</value>")[0].strip())


async def brad_chatting(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """A terminal chat of console:brad that has answered its first message."""
    bot = await spawn_bot("--user", "brad", env=env, cwd=cwd)
    assert bot.stdin is not None and bot.stdout is not None
    bot.stdin.write(b"hello\n")
    await bot.stdin.drain()
    first = await asyncio.wait_for(bot.stdout.readline(), 30)
    assert b"Nothing is known" in first
    return bot


async def test_operator_edits_a_running_bots_memory_from_the_shell(tmp_path: Path) -> None:
    async with FakeOpenAI(echo_memory) as server:
        env = bot_env(tmp_path, server.base_url)
        bot = await brad_chatting(env, tmp_path)
        assert bot.stdin is not None and bot.stdout is not None

        code, out, err = await admin(env, "set", "console:brad", "human", "Name: Brad. Surfs.")
        assert code == 0, err
        assert "Saved console:brad human as v2" in out

        bot.stdin.write(b"what do you know?\n")
        await bot.stdin.drain()
        assert await asyncio.wait_for(bot.stdout.readline(), 30) == b"Name: Brad. Surfs.\n"

        code, out, _ = await admin(env, "history", "console:brad", "human")
        assert "**v2** operator cli:" in out and "+Name: Brad. Surfs." in out
        code, out, _ = await admin(env, "revert", "console:brad", "human", "1")
        assert code == 0 and "saved as v3" in out
        code, out, _ = await admin(env, "audit")
        assert [line.split()[3] for line in out.splitlines()[:3]] == ["revert", "history", "set"]

        bot.stdin.close()
        assert await asyncio.wait_for(bot.wait(), 30) == 0


async def test_usage_and_missing_database(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    code, out, _ = await admin(env)
    assert code == 2 and "usage: python -m bots admin <verb>" in out
    code, _, err = await admin(env, "users")
    assert code == 1 and "no database at" in err and "AGENTCORE_DB" in err
    await run_bot("hi\n", env, tmp_path)  # creates the database
    code, out, _ = await admin(env, "memory", "nobody")
    assert code == 2 and out.strip() == (
        "'nobody' is not a user; name users as platform:id, e.g. telegram:42"
    )
    code, out, _ = await admin(env, "users")
    assert code == 0 and out.startswith("console:")


async def test_startup_report_lists_the_last_runs(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    for _ in range(2):
        code, _, err = await run_bot("", env, tmp_path)
        assert code == 0 and "startup: imports=" in err
    no_model = {k: v for k, v in env.items() if not k.startswith("OPENAI")}
    proc = await spawn_bot("--startup-report", env=no_model, stdin=False)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    assert proc.returncode == 0
    assert lines[0].split() == [
        "started",
        "(UTC)",
        "imports",
        "config",
        "db",
        "llm",
        "console",
        "total",
        "rss",
    ]
    assert len(lines) == 3 and lines[1].endswith("MB")


async def test_admin_reads_the_config_file_named_after_it(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    await brad_said_hi(tmp_path / "bot.db")
    config = tmp_path / "bot.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "bot.db"}"\n[memmory]\nhuman = "x"\n')
    without_db = {k: v for k, v in env.items() if k != "AGENTCORE_DB"}
    code, out, err = await admin(without_db, "--config", str(config), "users")
    assert code == 0, err
    assert out.startswith("console:brad")
    assert err.count("ignoring [memmory]") == 1 and "did you mean [memory]?" in err


async def test_arguments_that_would_be_cut_or_shifted_are_refused(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    await brad_said_hi(tmp_path / "bot.db")
    for words in (("shared", "server rules", "Be nice"), ("set", "", "human", "text")):
        code, out, err = await admin(env, *words)
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [
            f"error: argument {words[1]!r}: user names, block labels and numbers are single "
            "words (no spaces, not empty)"
        ]
    code, out, _ = await admin(env, "shared", "server", "Be nice, all of you")  # free text is free
    assert code == 0 and "(19 chars)" in out


async def test_output_to_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    await brad_said_hi(tmp_path / "bot.db")
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has already exited
    env = {k: v for k, v in env.items() if not k.startswith("OPENAI")}
    proc = await spawn_bot("admin", "audit", env=env, stdin=False, stdout=writer)
    os.close(writer)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert err == b""


async def test_import_from_the_shell_is_refused_while_the_bot_runs(tmp_path: Path) -> None:
    agent_file = tmp_path / "sam.af"
    agent_file.write_text('{"agents": [{"messages": [{"role": "user", "content": "hi"}]}]}')
    async with FakeOpenAI(echo_memory) as server:
        env = bot_env(tmp_path, server.base_url)
        bot = await brad_chatting(env, tmp_path)
        assert bot.stdin is not None
        code, out, err = await admin(env, "import", "console:brad", str(agent_file))
        assert code == 1 and out == ""
        assert err.strip().splitlines() == [
            f"error: the bot is running on this database (pid {bot.pid}); stop it, import, then "
            "start it again, so the import cannot land in the middle of a turn"
        ]
        bot.stdin.close()
        assert await asyncio.wait_for(bot.wait(), 30) == 0
    code, out, err = await admin(env, "import", "console:brad", str(agent_file))
    assert code == 0, err
    assert out.startswith("Imported console:brad: 2 blocks, 1 messages")


async def test_import_on_postgresql_waits_for_the_persons_turn_in_a_bot_process(
    postgres_url: str, tmp_path: Path
) -> None:
    agent_file = tmp_path / "sam.af"
    agent_file.write_text('{"agents": [{"messages": [{"role": "user", "content": "hi"}]}]}')
    env = bot_env(tmp_path, "", AGENTCORE_DB=postgres_url)
    bot = await PostgresStorage.open(postgres_url)
    watcher = await asyncpg.connect(postgres_url)
    try:
        async with bot.person(AgentKey("telegram", "5")):  # their turn runs in a bot process
            importing = asyncio.ensure_future(admin(env, "import", "telegram:5", str(agent_file)))
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while not await watcher.fetchval(waiting):
                assert not importing.done(), await importing  # it must wait, not fail
            assert not importing.done()
        code, out, err = await importing
    finally:
        await watcher.close()
        await bot.close()
    assert code == 0, err
    assert out.startswith("Imported telegram:5: 2 blocks, 1 messages")


async def test_operator_reads_model_usage_from_the_shell(tmp_path: Path) -> None:
    async with FakeOpenAI(lambda body: Completion(content="Hello!")) as server:
        env = bot_env(tmp_path, server.base_url)
        code, out, err = await run_bot("hi\nhow are you?\n", env, tmp_path, "--user", "brad")
        assert code == 0, err
    measured = server.cache.measured
    assert len(measured) == 3  # two turns, and the session's consolidation at exit
    tokens = sum(m.prompt_tokens for m in measured) + 30  # 10 completion tokens a call
    code, out, err = await admin(env, "usage", "console:brad")
    assert code == 0, err
    assert out.startswith("Model use for console:brad “brad”\ntoday: 3 calls, ")
    assert (
        f"today: 3 calls, {tokens:,} tokens, " in out and "of prompt tokens cached; about $" in out
    )
    code, out, _ = await admin(env, "usage")
    assert "most tokens this month:\n  console:brad “brad”: 3 calls" in out
    code, out, _ = await admin(env, "audit")
    assert [line.split()[3:5] for line in out.splitlines()[:2]] == [
        ["usage", "*"],
        ["usage", "console:brad"],
    ]


async def test_import_says_what_it_skipped_and_refuses_a_file_with_no_role_it_knows(
    tmp_path: Path,
) -> None:
    def agent_file(name: str, *roles: str) -> str:
        said = [{"role": role, "content": f"{role} said hi"} for role in roles]
        path = tmp_path / name
        path.write_text(json.dumps({"agents": [{"messages": said}]}))
        return str(path)

    env = bot_env(tmp_path, "http://127.0.0.1:9/v1")
    await brad_said_hi(tmp_path / "bot.db")  # the bot's database exists
    mixed = agent_file("mixed.af", "human", "user", "ai", "assistant")
    code, out, err = await admin(env, "import", "console:sam", mixed)
    assert code == 0, err
    assert out.startswith("Imported console:sam: 2 blocks, 2 messages")
    assert "2 messages with unknown roles were skipped (human: 1, ai: 1)" in out
    alien = agent_file("alien.af", "human", "bot")
    code, out, err = await admin(env, "import", "console:tom", alien)
    assert (code, err) == (2, "")  # a refused command: exit 2 and its one line, as others
    assert out == (
        f"{alien} is not an Agent File we can import: none of its 2 messages has a role we know "
        "(user, assistant, tool, system); found human: 1, bot: 1\n"
    )
    code, out, _ = await admin(env, "users")
    assert "console:tom" not in out  # nothing of it was imported
