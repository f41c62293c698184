"""Every model dialect end to end, as people use the bot: through the terminal chat (the real
``python -m bots`` process) and through Telegram (the real PTB client against the fake Bot API),
always with the real ``openai`` client against the fake OpenAI server speaking that dialect.

In each: a person tells a fact, the window is reset (and on Telegram, weeks pass), they ask,
and they get the fact back; nothing they receive holds markup or reasoning, and what is stored
holds no reasoning and tool calls in their canonical form.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.check import check_endpoint
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.memory.consolidation import INSTRUCTIONS as CONSOLIDATION
from agentcore.storage.sqlite import SQLiteStorage
from bots.compose import build_model, runtime_over
from bots.telegram import TelegramAdapter, build_application
from config import load_settings
from tests.fakes.openai_server import (
    DIALECTS,
    Action,
    Completion,
    FakeOpenAI,
    Intent,
    dialect,
    last_user,
    server_refusal,
    system,
)
from tests.fakes.telegram_server import FakeTelegram, User
from tests.process import bot_env, run_bot

FACT = "My sister Ana lives in Lisbon."
QUESTION = "Where does my sister live?"
ANSWER = "Your sister Ana lives in Lisbon."
SAVED = "Got it, I'll remember that."
THOUGHT = "The person is telling me something; let me think about what matters."
MARKUP = re.compile(r"<|>|\{|\}|\[TOOL_CALLS\]|python_tag|request_heartbeat|tool_call")
ALICE = User(3001, "Alice", "alice")


def memory_brain(body: dict[str, Any]) -> Intent:
    """Saves where a sister lives to core memory; answers from anything in its prompt; asked to
    consolidate a session, answers with the JSON the bot asks for."""
    if system(body) == CONSOLIDATION:
        session = re.findall(r"My sister (\w+) lives in (\w+)", last_user(body))
        facts = [f"Sister {name} lives in {city}" for name, city in session]
        return Intent(say=json.dumps({"blocks": {"human": {"add": facts}}}))
    said = [m for m in body["messages"] if m["role"] != "system"]
    last = said[-1]
    content = str(last.get("content") or "")
    if last["role"] == "tool" or content.startswith("<tool_response>"):
        return Intent(say=SAVED)
    told = re.search(r"My sister (\w+) lives in (\w+)", content)
    if told:
        fact = {"label": "human", "content": f"Sister {told[1]} lives in {told[2]}"}
        return Intent(calls=(("core_memory_append", fact),))
    if QUESTION.lower() in content.lower():
        known = "\n".join(str(m.get("content") or "") for m in body["messages"] if m is not last)
        found = re.search(r"[Ss]ister (\w+) lives in (\w+)", known)
        return Intent(say=f"Your sister {found[1]} lives in {found[2]}." if found else "No idea.")
    return Intent(say="Okay.")


def fake_model(name: str, token_rate: float = 0.0) -> FakeOpenAI:
    """The dialect's server; ``token_rate`` streams its answers a token at a time, so a
    streaming chat shows them part-written (where markup or reasoning could leak)."""
    respond = dialect(name, memory_brain)

    def paced(body: dict[str, Any]) -> Action | Awaitable[Action]:
        action = respond(body)
        return replace(action, token_rate=token_rate) if isinstance(action, Completion) else action

    return FakeOpenAI(paced, refuses=server_refusal(name))


def assert_clean(received: list[str]) -> None:
    for text in received:
        assert not MARKUP.search(text), text
        assert THOUGHT not in text and "think" not in text.lower(), text


def assert_stored_well(db: Path, name: str) -> None:
    """No reasoning or call markup in stored rows; calls stored canonical; the fact reached core
    memory: through the agent's tool call, or, for the model that never calls one, through the
    consolidation that ran when the session ended (here: at shutdown)."""
    with sqlite3.connect(db) as conn:
        contents = [str(r[0]) for r in conn.execute("SELECT content FROM messages") if r[0]]
        calls = [json.loads(r[0]) for r in conn.execute("SELECT tool_calls FROM messages") if r[0]]
        human = conn.execute("SELECT value FROM blocks WHERE label = 'human'").fetchone()[0]
        authors = [r[0] for r in conn.execute("SELECT actor FROM block_history ORDER BY id")]
    for text in contents:
        assert THOUGHT not in text and "<think>" not in text and "<tool_call>" not in text
        assert "[TOOL_CALLS]" not in text and "python_tag" not in text
    assert "Sister Ana lives in Lisbon" in human
    if name == "no_tools":
        assert calls == [] and authors == ["consolidation"]
        return
    assert authors == ["agent"]  # consolidation found the fact saved already
    [[saved]] = [c for c in calls if c[0]["name"] == "core_memory_append"]
    arguments = json.loads(saved["arguments"])
    assert arguments["label"] == "human" and arguments["content"] == "Sister Ana lives in Lisbon"


@pytest.mark.parametrize("name", DIALECTS)
async def test_terminal_chat(tmp_path: Path, name: str) -> None:
    async with fake_model(name) as server:
        env = bot_env(tmp_path, server.base_url)
        code, out, err = await run_bot(f"{FACT}\n/reset\n{QUESTION}\n", env, tmp_path)
    assert code == 0, err
    told, reset, answer = out.splitlines()
    assert told == (SAVED if name != "no_tools" else "Okay, I'll keep that in mind.")
    assert reset.startswith("Fresh start") and answer == ANSWER
    assert_clean([told, answer])
    assert_stored_well(tmp_path / "bot.db", name)
    assert "Traceback" not in err
    refusals = [line for line in err.splitlines() if "does not take tool definitions" in line]
    assert len(refusals) == (1 if server_refusal(name) else 0), err
    if server_refusal(name):
        assert "WARNING" in refusals[0] and "prompted" in refusals[0]


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.mark.parametrize("name", DIALECTS)
async def test_telegram(telegram: FakeTelegram, tmp_path: Path, name: str) -> None:
    """Built as ``python -m bots`` builds it (the endpoint check at start included), with an
    injected clock so three weeks pass between telling and asking."""
    now = datetime.now(UTC)
    clock = ManualClock(now - timedelta(weeks=3))
    async with fake_model(name, token_rate=200) as server:
        settings = load_settings(env={"OPENAI_BASE_URL": server.base_url}, dotenv_file=None)
        settings = replace(settings, runtime=replace(settings.runtime, rate_limit_per_minute=100))
        client = OpenAICompatibleLLM(
            model=settings.llm.model, base_url=server.base_url, api_key=None, deadline=5
        )
        model = build_model(settings, client)
        report = await check_endpoint(client, model)
        assert report.problem is None and model.prompted == bool(server_refusal(name))
        storage = await SQLiteStorage.open(tmp_path / "bot.db")
        runtime = runtime_over(settings, storage, model, clock)
        application = build_application(telegram.token, telegram.root)
        adapter = TelegramAdapter(application, runtime, edit_seconds=0.01)
        await adapter.start()
        try:
            telegram.private(ALICE, FACT, date=clock.now())
            await telegram.wait_for_messages(ALICE.id, 1)
            clock.set(now)
            telegram.private(ALICE, "/reset", date=now)
            telegram.private(ALICE, QUESTION, date=now)
            await telegram.wait_for_messages(ALICE.id, 3)
        finally:
            await adapter.stop()
            await runtime.shutdown()
    received = telegram.texts(ALICE.id)
    assert received[2] == ANSWER, received
    edits = telegram.to_chat(ALICE.id, "editMessageText")
    shown = received + [edit.plain for edit in edits]  # each streamed edit as the person saw it
    if name != "letta":  # its answers are send_message calls: nothing to show until complete
        assert len(shown) > len(received), "the answers were shown part-written"
    assert_clean(shown)
    assert_stored_well(tmp_path / "bot.db", name)
