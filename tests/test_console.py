"""``python -m bots`` as a terminal chat, run as a real subprocess against the fake model."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Completion, FakeOpenAI, last_user, system

REPO = Path(__file__).resolve().parents[1]


def remembering_model(body: dict[str, Any]) -> Completion:
    """Saves "My name is X" to core memory; answers "What is my name?" from the system prompt."""
    if body["messages"][-1]["role"] == "tool":
        return Completion(content="Nice to meet you!")
    text = last_user(body)
    said = re.search(r"My name is (\w+)", text)
    if said:
        return Completion(
            tool_calls=[("core_memory_append", {"label": "human", "content": f"Name: {said[1]}"})]
        )
    known = re.search(r"Name: (\w+)", system(body))
    if "name" in text.lower():
        return Completion(content=f"Your name is {known[1]}." if known else "I don't know yet.")
    return Completion(content=f"echo: {text}")


def bot_env(tmp_path: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "OPENAI_BASE_URL": base_url,
        "AGENTCORE_DB": str(tmp_path / "bot.db"),
    }
    return env | extra


async def run_bot(stdin: str, env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


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
