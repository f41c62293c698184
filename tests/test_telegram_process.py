"""``python -m bots`` with TELEGRAM_TOKEN, as a real subprocess against the fake Bot API and the
fake OpenAI server: memories survive a restart, signals stop it cleanly, a 409 ends it."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Completion, FakeOpenAI, last_user, system
from tests.fakes.telegram_server import FakeTelegram, User
from tests.process import bot_env, spawn_bot

ALICE = User(1001, "Alice", "alice_w")
BOB = User(1002, "Bob", "bob_b")


def model(body: dict[str, Any]) -> Completion:
    """Remembers names in core memory; looks things up with conversation_search when asked
    "what did I tell you about ..." and answers with what it found."""
    messages = body["messages"]
    if messages[-1]["role"] == "tool":
        tool = messages[-2]["tool_calls"][0]["function"]["name"]
        if tool == "conversation_search":
            return Completion(content="From my notes: " + messages[-1]["content"])
        return Completion(content="Nice to meet you!")
    text = last_user(body)
    about = re.search(r"what did I tell you about (.+?)\?", text, re.IGNORECASE)
    if about:
        return Completion(tool_calls=[("conversation_search", {"query": about[1]})])
    said = re.search(r"My name is (\w+)", text)
    if said:
        return Completion(
            tool_calls=[("core_memory_append", {"label": "human", "content": f"Name: {said[1]}"})]
        )
    if "my name" in text.lower():
        known = re.search(r"Name: (\w+)", system(body))
        return Completion(content=f"Your name is {known[1]}." if known else "I don't know yet.")
    return Completion(content=f"echo: {text}")


@asynccontextmanager
async def bot_process(
    env: dict[str, str], fake: FakeTelegram
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start ``python -m bots`` and wait until it polls the fake for updates."""
    polls_before = len(fake.polls)
    proc = await spawn_bot(env=env, stdin=False)
    try:
        await fake.wait_until(lambda: len(fake.polls) > polls_before or proc.returncode is not None)
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def telegram_env(tmp_path: Path, fake: FakeTelegram, llm: FakeOpenAI) -> dict[str, str]:
    return bot_env(
        tmp_path,
        llm.base_url,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_BASE_URL=fake.root,
        AGENTCORE_LOG_LEVEL="DEBUG",  # the token must not leak even into debug logs
    )


async def test_memories_survive_a_restart_and_signals_stop_cleanly(tmp_path: Path) -> None:
    three_weeks_ago = datetime.now(UTC) - timedelta(weeks=3)
    async with FakeTelegram() as fake, FakeOpenAI(model) as llm:
        env = telegram_env(tmp_path, fake, llm)
        async with bot_process(env, fake) as proc:
            fake.private(ALICE, "My favourite colour is teal", date=three_weeks_ago)
            fake.private(ALICE, "My name is Alice")
            fake.private(BOB, "My name is Bob")
            await fake.wait_until(lambda: len(fake.sent) == 3, within=30)
            code, first_log = await stop(proc, signal.SIGTERM)
        assert code == 0, first_log
        assert fake.unconfirmed == []  # everything received was confirmed before exiting

        async with bot_process(env, fake) as proc:
            fake.private(ALICE, "What is my name?")
            fake.private(BOB, "What is my name?")
            fake.private(ALICE, "What did I tell you about my favourite colour?")
            await fake.wait_until(lambda: len(fake.sent) == 6, within=30)
            code, second_log = await stop(proc, signal.SIGINT)
        assert code == 0, second_log

    assert fake.texts(ALICE.id)[-2] == "Your name is Alice."
    assert fake.texts(BOB.id)[-1] == "Your name is Bob."
    recalled = fake.texts(ALICE.id)[-1]
    assert "My favourite colour is teal" in recalled
    assert three_weeks_ago.strftime("%Y-%m-%d") in recalled  # stored with Telegram's date
    for log in (first_log, second_log):
        assert re.search(r"startup: .*telegram=\d+ms total=\d+ms", log), log
        assert fake.token not in log and "Traceback" not in log
        assert fake.token.split(":")[1] not in log


async def test_a_second_instance_conflict_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    async with FakeTelegram() as fake, FakeOpenAI(model) as llm:
        fake.inject("getUpdates", 409, "Conflict: terminated by other getUpdates request")
        env = telegram_env(tmp_path, fake, llm) | {"AGENTCORE_LOG_LEVEL": "INFO"}
        async with bot_process(env, fake) as proc:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1, err.decode()
    log = err.decode()
    conflict_lines = [line for line in log.splitlines() if "409 Conflict" in line]  # not 1409ms
    assert len(conflict_lines) == 1 and "another process" in conflict_lines[0]
    assert "Traceback" not in log and fake.token not in log
    assert len(fake.polls) == 1  # it did not keep polling
