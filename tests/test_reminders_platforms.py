"""Reminders end to end on each platform: the real Telegram and Discord clients against their
fakes on 127.0.0.1, and the terminal chat, with the scheduler on the injected clock."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.fake import FunctionLLM
from agentcore.runtime import AgentRuntime
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import ReminderStatus
from agentcore.schedule.scheduler import Scheduler
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bots.adapter import Adapter
from bots.compose import build_runtime, build_scheduler
from bots.console import ConsoleAdapter
from bots.discord import DiscordAdapter
from bots.discord.connect import make_client, point_at
from bots.telegram import TelegramAdapter, build_application
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord, dm_channel_of, user_payload
from tests.fakes.telegram_server import Chat, FakeTelegram, User
from tests.test_reminders import model, until_true

MINUTE = timedelta(minutes=1)
ALICE = User(1001, "Alice", "alice_w")
GROUP = Chat(-100555, "supergroup", "Friends")


@dataclass
class Core:
    runtime: AgentRuntime
    scheduler: Scheduler


@asynccontextmanager
async def core(storage: SQLiteStorage, clock: ManualClock) -> AsyncIterator[Core]:
    settings = make_settings()
    doorbell = Doorbell()
    runtime = build_runtime(settings, storage, FunctionLLM(model), clock, doorbell=doorbell)
    scheduler = build_scheduler(settings, storage, runtime, clock, doorbell=doorbell)
    try:
        yield Core(runtime, scheduler)
    finally:
        await scheduler.stop(5.0)
        await runtime.shutdown()


@asynccontextmanager
async def serving(bot: Core, adapter: Adapter) -> AsyncIterator[None]:
    """The adapter started and attached, as the composition root does it."""
    await adapter.start()
    bot.scheduler.attach(adapter)
    bot.scheduler.start()
    try:
        yield
    finally:
        await bot.scheduler.stop(5.0)
        await adapter.stop()


@asynccontextmanager
async def on_telegram(fake: FakeTelegram, bot: Core) -> AsyncIterator[None]:
    adapter = TelegramAdapter(
        build_application(fake.token, fake.root), bot.runtime, retry_delays=(0.01,)
    )
    async with serving(bot, adapter):
        yield


async def test_telegram_private_and_group_reminders(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    async with FakeTelegram() as fake, core(storage, clock) as bot:
        async with on_telegram(fake, bot):
            fake.private(ALICE, "remind me in 10 minutes to stretch")
            await fake.wait_until(lambda: len(fake.texts(ALICE.id)) == 1)
            assert fake.texts(ALICE.id)[0].startswith("tool: Scheduled #1")
            asked = fake.message(
                ALICE, GROUP, f"@{fake.me.username} remind me in 5 minutes to vote"
            )
            await fake.wait_until(lambda: len(fake.texts(GROUP.id)) == 1)
            assert "in this group chat" in fake.texts(GROUP.id)[0]
            clock.advance(5 * MINUTE)
            await fake.wait_until(lambda: len(fake.texts(GROUP.id)) == 2)
            clock.advance(5 * MINUTE)
            await fake.wait_until(lambda: len(fake.texts(ALICE.id)) == 2)
        assert fake.texts(ALICE.id)[1] == "⏰ scheduled: stretch, set on 2025-01-06 09:00 UTC"
        group_reminder = fake.to_chat(GROUP.id)[1]
        assert group_reminder.plain == "⏰ scheduled: vote, set on 2025-01-06 09:00 UTC"
        [request] = [u for u in fake.updates.values() if u["update_id"] == asked]
        assert group_reminder.reply_to == request["message"]["message_id"]  # quotes the ask


async def test_telegram_person_who_blocked_the_bot_is_marked_failed(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    async with FakeTelegram() as fake, core(storage, clock) as bot:
        async with on_telegram(fake, bot):
            fake.private(ALICE, "remind me in 1 minute to stretch")
            await fake.wait_until(lambda: len(fake.texts(ALICE.id)) == 1)
            fake.inject("sendMessage", 403, "Forbidden: bot was blocked by the user")
            clock.advance(MINUTE)
            agent = await storage.load_agent(AgentKey("telegram", str(ALICE.id)))
            assert agent is not None
            async with asyncio.timeout(5):
                while (await storage.list_reminders(agent.id, pending_only=False))[  # noqa: ASYNC110
                    0
                ].status is not ReminderStatus.FAILED:
                    await asyncio.sleep(0.002)
        assert len(fake.texts(ALICE.id)) == 1


async def test_discord_dm_reminder_opens_the_dm_channel(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    alice = user_payload(4242, "alice")
    async with FakeDiscord() as fake, core(storage, clock) as bot:
        point_at(fake.api_base, fake.gateway_url)
        adapter = DiscordAdapter(bot.runtime, make_client(sharded=False), fake.token)
        async with serving(bot, adapter):
            dm = dm_channel_of(4242)
            await fake.send_message(
                author=alice, content="remind me in 10 minutes to stretch", channel_id=dm
            )
            await fake.wait_until(lambda: len(fake.posted(dm)) == 1 or None)
            clock.advance(10 * MINUTE)
            await fake.wait_until(lambda: len(fake.posted(dm)) == 2 or None)
        [opened] = fake.calls("POST", "/users/@me/channels")
        assert opened.json == {"recipient_id": 4242}
        assert fake.posted(dm)[1].json["content"] == (
            "⏰ scheduled: stretch, set on 2025-01-06 09:00 UTC"
        )


async def test_the_terminal_prints_a_due_reminder_while_open(
    storage: SQLiteStorage, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read_end, "r"))
    monkeypatch.setattr(sys, "stdout", out)
    async with core(storage, clock) as bot:
        adapter = ConsoleAdapter(bot.runtime, clock, AgentKey("console", "brad"))
        async with serving(bot, adapter):
            os.write(write_end, b"remind me in 10 minutes to stretch\n")
            await until_true(lambda: "Scheduled #1" in out.getvalue())
            clock.advance(10 * MINUTE)
            await until_true(lambda: "⏰ scheduled: stretch" in out.getvalue())
            os.close(write_end)  # end of input: the chat ends
            assert await asyncio.wait_for(adapter.finished(), 5) == 0
    assert out.getvalue().splitlines()[-1] == "⏰ scheduled: stretch, set on 2025-01-06 09:00 UTC"
