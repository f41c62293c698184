"""The Discord adapter end to end: the real discord.py client against the fake Discord REST API
and gateway on 127.0.0.1, over the real runtime and SQLite storage with a scripted model.

The last tests run ``python -m bots`` as a subprocess pointed at the fakes with DISCORD_TOKEN,
DISCORD_API_BASE and DISCORD_GATEWAY_URL, as an operator would.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentcore.clock import ManualClock, to_millis
from agentcore.commands import OPERATORS_ONLY, USER_COMMANDS
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, last_user_text, reply, system_text
from agentcore.media.intake import UNSUPPORTED
from agentcore.memory.prompt import GROUP_NOTE
from agentcore.runtime import SLOW_DOWN, AgentRuntime, Deliver, Ticket
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, Attachment, InboundMessage, Reply, ReplyKind, ReplySink
from bots.compose import build_runtime
from bots.discord.adapter import PRIVATE_IN_PUBLIC, DiscordAdapter
from bots.discord.connect import make_client, point_at
from bots.discord.send import send_reply
from bots.discord.translate import DiscordRoute
from tests.conftest import make_settings
from tests.fakes.discord_server import (
    FLAG_EPHEMERAL,
    OP_HEARTBEAT,
    OP_IDENTIFY,
    OP_RESUME,
    FakeDiscord,
    Recorded,
    dm_channel_of,
    snowflake,
    user_payload,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.hostile import CORPUS
from tests.process import bot_env, remembering_model, spawn_bot
from tests.test_media import jpeg

ALICE = user_payload(snowflake(), "Alice")
BOB = user_payload(snowflake(), "Bob")
FENCE_RE = re.compile(r"^```", re.MULTILINE)


class Model:
    """The scripted model; tests swap ``answer`` (default: echo the last user message)."""

    def __init__(self) -> None:
        self.answer: Callable[[LLMRequest], LLMResponse | Awaitable[LLMResponse]] = echo
        self.requests: list[LLMRequest] = []
        self.called = asyncio.Event()

    async def __call__(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        self.called.set()
        result = self.answer(request)
        return await result if inspect.isawaitable(result) else result

    def user_texts(self) -> list[str]:
        return [last_user_text(r) for r in self.requests]


def echo(request: LLMRequest) -> LLMResponse:
    return reply(f"echo: {last_user_text(request)}")


@dataclass
class Bot:
    fake: FakeDiscord
    adapter: DiscordAdapter
    runtime: AgentRuntime
    model: Model
    storage: SQLiteStorage
    accepted: list[InboundMessage]

    async def dm(self, user: dict[str, Any], content: str, **kwargs: Any) -> dict[str, Any]:
        return await self.fake.send_message(
            author=user, content=content, channel_id=dm_channel(user), **kwargs
        )

    async def say_in_guild(self, user: dict[str, Any], content: str, **kwargs: Any) -> Any:
        return await self.fake.send_message(
            author=user, content=content, channel_id=self.fake.channel_id, guild=True, **kwargs
        )

    async def replies(self, channel_id: int, count: int = 1) -> list[Recorded]:
        return await self.fake.wait_until(
            lambda: posts if len(posts := self.fake.posted(channel_id)) >= count else None
        )


def dm_channel(user: dict[str, Any]) -> int:
    """The user's DM channel, as the fake opens it."""
    return dm_channel_of(int(user["id"]))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    storage: SQLiteStorage,
    *,
    sharded: bool = False,
    runtime_settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[Bot]:
    model = Model()
    runtime = build_runtime(
        make_settings(runtime=runtime_settings), storage, FunctionLLM(model), ManualClock()
    )
    accepted: list[InboundMessage] = []
    accept = runtime.accept

    async def recording_accept(message: InboundMessage) -> Any:
        accepted.append(message)
        return await accept(message)

    runtime.accept = recording_accept  # type: ignore[method-assign]
    point_at(fake.api_base, fake.gateway_url)
    adapter = DiscordAdapter(runtime, make_client(sharded=sharded), fake.token, **options)
    await adapter.start()
    try:
        yield Bot(fake, adapter, runtime, model, storage, accepted)
    finally:
        await adapter.stop()
        await runtime.shutdown()


@pytest.fixture
async def bot(fake: FakeDiscord, storage: SQLiteStorage) -> AsyncIterator[Bot]:
    async with running_bot(fake, storage) as running:
        yield running


def balanced(part: str) -> bool:
    return len(FENCE_RE.findall(part)) % 2 == 0


# ---------------------------------------------------------------- DMs and servers


async def test_a_dm_is_answered_and_stored_with_discords_timestamp(bot: Bot, db_path: Path) -> None:
    sent = datetime.now(UTC) - timedelta(days=3)
    await bot.dm(ALICE, "hello there", sent_at=sent)
    [answer] = await bot.replies(dm_channel(ALICE))
    assert answer.json["content"] == "echo: hello there"
    assert "message_reference" not in answer.json  # a DM needs no reply reference
    assert answer.json["allowed_mentions"] == {"parse": []}
    with sqlite3.connect(db_path) as db:
        stored = db.execute(
            "SELECT a.platform, a.user_id, a.display_name, m.content, m.created_at "
            "FROM messages m JOIN agents a ON a.id = m.agent_id WHERE m.role = 'user'"
        ).fetchall()
    assert stored == [("discord", ALICE["id"], "Alice", "hello there", to_millis(sent))]


async def test_messages_over_the_rate_limit_are_answered_a_little_later(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    settings = {"rate_limit_per_minute": 1, "held_answer_seconds": 0.1}
    async with running_bot(fake, storage, runtime_settings=settings) as bot:
        for i in range(3):
            await bot.dm(ALICE, f"message {i}")
        replies = await bot.replies(dm_channel(ALICE), count=3)  # Alice sends nothing more
        assert await storage.list_pending() == []
    texts = [r.json["content"] for r in replies]
    assert {texts[0], texts[1]} == {"echo: message 0", SLOW_DOWN}  # the notice needs no turn
    assert texts[2] == "echo: message 2"


async def test_guild_mentions_and_replies_are_answered_and_chatter_is_not(bot: Bot) -> None:
    fake = bot.fake
    await bot.say_in_guild(ALICE, "just chatting with friends")
    await bot.say_in_guild(BOB, "@everyone lunch?")
    trigger = await bot.say_in_guild(ALICE, f"<@{fake.bot_id}> what's up?", mentions=[fake.bot])
    [answer] = await bot.replies(fake.channel_id)
    assert bot.model.user_texts() == ["what's up?"]
    assert GROUP_NOTE in system_text(bot.model.requests[0])
    assert answer.json["message_reference"]["message_id"] == int(trigger["id"])
    bots_message = fake.message_payload(
        author=fake.bot, content=answer.json["content"], channel_id=fake.channel_id, guild=True
    )
    follow_up = await bot.say_in_guild(BOB, "and you?", referenced=bots_message)
    answers = await bot.replies(fake.channel_id, 2)
    assert answers[1].json["message_reference"]["message_id"] == int(follow_up["id"])
    assert bot.model.user_texts() == ["what's up?", "and you?"]
    assert {m.key.user_id for m in bot.accepted} == {ALICE["id"], BOB["id"]}


async def test_bots_webhooks_and_the_bot_itself_are_ignored(bot: Bot) -> None:
    fake = bot.fake
    mention = f"<@{fake.bot_id}> hi"
    other_bot = user_payload(snowflake(), "OtherBot", bot=True)
    await bot.say_in_guild(other_bot, mention, mentions=[fake.bot])
    await bot.say_in_guild(ALICE, mention, mentions=[fake.bot], webhook_id=snowflake())
    await bot.dm(fake.bot, "talking to myself")
    await bot.dm(ALICE, "a human")
    await bot.replies(dm_channel(ALICE))
    assert bot.model.user_texts() == ["a human"]
    assert [r.path for r in fake.posted()] == [f"/channels/{dm_channel(ALICE)}/messages"]


async def test_each_user_gets_their_own_agent(bot: Bot) -> None:
    def remembering(request: LLMRequest) -> LLMResponse:
        return reply(f"{len(request.messages)} messages in my context")

    bot.model.answer = remembering
    for _ in range(3):
        await bot.dm(ALICE, "hi")
    await bot.dm(BOB, "hi")
    alice = await bot.replies(dm_channel(ALICE), 3)
    [bob] = await bot.replies(dm_channel(BOB))
    # Bob's first turn sees only the system prompt, his own message and the turn's context.
    assert bob.json["content"] == "3 messages in my context"
    assert alice[2].json["content"] != bob.json["content"]


# ---------------------------------------------------------------- replies


async def test_a_9000_character_reply_arrives_in_ordered_balanced_parts(bot: Bot) -> None:
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(120))
    prose = " ".join(f"Sentence number {i} explains a detail." for i in range(80))
    long_text = f"{prose}\n\n```python\n{code}\n```\n\n{prose}"
    long_text += "\n\n" + "The end. " * ((9000 - len(long_text)) // 9)
    assert len(long_text) >= 9000
    bot.model.answer = lambda request: reply(long_text)
    trigger = await bot.say_in_guild(ALICE, f"<@{bot.fake.bot_id}> explain", mentions=[])
    posts = await bot.fake.wait_until(lambda: _all_parts(bot, long_text))
    parts = [p.json["content"] for p in posts]
    assert len(parts) >= 5
    assert all(len(part) <= 2000 and balanced(part) for part in parts)
    assert _normalised("\n".join(parts)) == _normalised(long_text)
    assert {p.json["message_reference"]["message_id"] for p in posts} == {int(trigger["id"])}


def _all_parts(bot: Bot, text: str) -> list[Recorded] | None:
    posts = bot.fake.posted(bot.fake.channel_id)
    joined = _normalised("\n".join(p.json["content"] for p in posts))
    return posts if joined == _normalised(text) else None


def _normalised(text: str) -> str:
    """Without whitespace and fence lines: what splitting must preserve, in order."""
    return re.sub(r"\s+", "", re.sub(r"^```\w*$", "", text, flags=re.MULTILINE))


async def test_model_output_pings_nobody_but_the_author_when_it_mentions_them(bot: Bot) -> None:
    fake = bot.fake
    bot.model.answer = lambda request: reply(
        f"@everyone @here <@&{fake.role_id}> look!"
        + (f" <@{ALICE['id']}>" if "me" in last_user_text(request) else "")
    )
    await bot.say_in_guild(ALICE, f"<@{fake.bot_id}> shout", mentions=[fake.bot])
    await bot.say_in_guild(ALICE, f"<@{fake.bot_id}> shout at me", mentions=[fake.bot])
    first, second = await bot.replies(fake.channel_id, 2)
    assert first.json["content"].startswith("@everyone @here")
    assert first.json["allowed_mentions"] == {"parse": []}
    assert second.json["allowed_mentions"] == {
        "parse": [],
        "users": [int(ALICE["id"])],
        "replied_user": True,
    }


async def test_typing_shows_while_a_turn_runs(bot: Bot) -> None:
    release = asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        await release.wait()
        return reply("done thinking")

    bot.model.answer = slow
    await bot.dm(ALICE, "think hard")
    channel = dm_channel(ALICE)
    await bot.fake.wait_until(lambda: bot.fake.typing(channel))
    assert bot.fake.posted(channel) == []
    release.set()
    [answer] = await bot.replies(channel)
    assert answer.json["content"] == "done thinking"


async def test_an_image_attachment_with_text_is_downloaded_and_shown(bot: Bot) -> None:
    data = jpeg(640, 480)
    photo = bot.fake.attachment_payload("cat.jpg", len(data), data=data, content_type="image/jpeg")
    await bot.dm(ALICE, "look at my cat", attachments=[photo])
    [answer] = await bot.replies(dm_channel(ALICE))
    assert bot.fake.downloads == [photo["id"]]
    description = "echo: look at my cat"  # the scripted model echoes the caption it was shown
    assert answer.json["content"] == f"echo: [photo: {description}]\nlook at my cat"
    assert bot.model.user_texts()[-1] == f"[photo: {description}]\nlook at my cat"


async def test_a_file_it_cannot_read_gets_one_sentence(bot: Bot) -> None:
    archive = bot.fake.attachment_payload("a.zip", 4, data=b"PK\x03\x04")
    await bot.dm(ALICE, "", attachments=[archive])
    [notice] = await bot.replies(dm_channel(ALICE))
    assert notice.json["content"] == UNSUPPORTED.format(name="a.zip")


async def test_a_rate_limited_send_is_retried(bot: Bot) -> None:
    channel = dm_channel(ALICE)
    bot.fake.fail_next("POST", f"/channels/{channel}/messages", retry_after=0.01)
    await bot.dm(ALICE, "hello")
    await bot.fake.wait_until(lambda: len(bot.fake.posted(channel)) == 2)
    first, second = bot.fake.posted(channel)
    assert first.json == second.json and second.json["content"] == "echo: hello"


async def test_a_refused_send_is_logged_and_the_bot_carries_on(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    channel = dm_channel(ALICE)
    # A 429 without "Via" is a Cloudflare ban to discord.py: no retry, an HTTPException.
    bot.fake.fail_next("POST", f"/channels/{channel}/messages", via=False)
    await bot.dm(ALICE, "first")
    await bot.fake.wait_until(lambda: bot.fake.posted(channel))
    await bot.dm(ALICE, "second")
    await bot.fake.wait_until(lambda: len(bot.fake.posted(channel)) == 2)
    assert bot.fake.posted(channel)[1].json["content"] == "echo: second"
    refused = [r for r in caplog.records if "could not send a reply" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert not any(r.exc_info for r in caplog.records)


async def test_an_outgoing_file_is_sent_as_multipart(bot: Bot) -> None:
    export = Attachment("memory.af", b'{"agents": []}', "application/json")
    route = DiscordRoute(dm_channel(ALICE), snowflake())
    sent = await send_reply(
        bot.adapter.client,
        route,
        int(ALICE["id"]),
        Reply("Your export", ReplyKind.COMMAND, attachments=(export,)),
    )
    assert sent
    [post] = bot.fake.posted(dm_channel(ALICE))
    assert post.json["content"] == "Your export"
    assert post.files == [("memory.af", b'{"agents": []}')]


# ---------------------------------------------------------------- slash commands


async def test_commands_are_synced_globally_at_startup(bot: Bot) -> None:
    assert bot.adapter.sync_task is not None
    await bot.adapter.sync_task
    [sync] = bot.fake.calls("PUT", f"/applications/{bot.fake.application_id}/commands")
    assert [c["name"] for c in sync.json] == [*(c.name for c in USER_COMMANDS), "admin"]


async def test_memory_slash_command_answers_ephemerally(bot: Bot) -> None:
    await bot.dm(ALICE, "hello")
    await bot.replies(dm_channel(ALICE))
    interaction = await bot.fake.send_command("memory", ALICE)
    callback = await _callback(bot, interaction)
    assert callback.json["type"] == 4  # a message, answered directly
    assert callback.json["data"]["flags"] == FLAG_EPHEMERAL
    assert "**human**" in callback.json["data"]["content"]
    assert callback.json["data"]["allowed_mentions"] == {"parse": []}
    assert bot.accepted[-1].text == "/memory"


async def test_a_typed_command_that_shows_memory_is_not_posted_in_a_server(bot: Bot) -> None:
    await bot.dm(ALICE, "hello")
    await bot.replies(dm_channel(ALICE))
    await bot.say_in_guild(ALICE, f"<@{bot.fake.bot_id}> /memory", mentions=[bot.fake.bot])
    [answer] = await bot.replies(bot.fake.channel_id)
    assert answer.json["content"] == PRIVATE_IN_PUBLIC
    await bot.dm(ALICE, "/memory")  # in a DM it is shown
    in_private = (await bot.replies(dm_channel(ALICE), 2))[-1]
    assert "**human**" in in_private.json["content"]


async def test_help_is_public_and_works_in_a_dm(bot: Bot) -> None:
    interaction = await bot.fake.send_command("help", BOB, guild=False)
    callback = await _callback(bot, interaction)
    assert callback.json["data"]["content"].startswith("Commands:")
    assert not callback.json["data"].get("flags")


async def test_a_long_command_reply_with_a_file_continues_in_follow_ups(bot: Bot) -> None:
    export = Attachment("memory.af", b'{"agents": []}', "application/json")
    long_reply = Reply("line of output\n" * 300, ReplyKind.COMMAND, True, (export,))

    async def answer(
        ticket: Ticket, sink: ReplySink | None = None, *, deliver: Deliver | None = None
    ) -> Reply:
        return long_reply

    bot.runtime.answer = answer  # type: ignore[method-assign]
    interaction = await bot.fake.send_command("help", ALICE)
    first = await _callback(bot, interaction)
    path = f"/webhooks/{bot.fake.application_id}/{interaction['token']}"
    rest = await bot.fake.wait_until(
        lambda: c if len(c := bot.fake.calls("POST", path)) > 1 else None
    )
    parts = [first.json["data"]["content"], *(r.json["content"] for r in rest)]
    assert len(parts) == 3 and "".join(parts).count("line of output") == 300
    assert first.json["data"]["flags"] == FLAG_EPHEMERAL
    assert all(r.json["flags"] == FLAG_EPHEMERAL for r in rest)
    assert rest[-1].files == [("memory.af", b'{"agents": []}')]
    assert first.files == [] and rest[0].files == []


async def test_a_slow_command_is_deferred_then_followed_up(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    release = asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        await release.wait()
        return reply("finally")

    async with running_bot(fake, storage, command_budget=0.05) as bot:
        bot.model.answer = slow
        await bot.dm(ALICE, "a long question")  # holds Alice's turn lock
        await bot.model.called.wait()
        interaction = await fake.send_command("memory", ALICE)
        deferred = await _callback(bot, interaction)
        assert deferred.json == {"type": 5, "data": {"flags": FLAG_EPHEMERAL}}
        release.set()
        path = f"/webhooks/{fake.application_id}/{interaction['token']}"
        [follow_up] = await fake.wait_until(lambda: fake.calls("POST", path))
        assert "**human**" in follow_up.json["content"]
        assert follow_up.json["flags"] == FLAG_EPHEMERAL


async def test_a_command_with_a_usage_takes_free_text(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    async with running_bot(fake, storage) as bot:
        assert bot.adapter.sync_task is not None
        await bot.adapter.sync_task
        [sync] = fake.calls("PUT", f"/applications/{fake.application_id}/commands")
        [synced] = [c for c in sync.json if c["name"] == "search"]
        assert [(o["name"], o["type"], o["required"]) for o in synced["options"]] == [
            ("words", 3, False)
        ]
        interaction = await fake.send_command("search", ALICE, options={"words": "cats dogs"})
        callback = await _callback(bot, interaction)
        assert bot.accepted[-1].text == "/search cats dogs"
        assert "No messages of ours match “cats dogs”" in callback.json["data"]["content"]


async def test_commands_sync_to_one_guild_when_configured(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    async with running_bot(fake, storage, sync_guild=fake.guild_id) as bot:
        assert bot.adapter.sync_task is not None
        await bot.adapter.sync_task
        path = f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
        [sync] = fake.calls("PUT", path)
        assert [c["name"] for c in sync.json] == [*(c.name for c in USER_COMMANDS), "admin"]
        assert fake.calls("PUT", f"/applications/{fake.application_id}/commands") == []
        interaction = fake.interaction_payload("help", ALICE)
        interaction["data"]["guild_id"] = str(fake.guild_id)  # a guild command's invocation
        await fake.dispatch("INTERACTION_CREATE", interaction)
        callback = await _callback(bot, interaction)
        assert callback.json["data"]["content"].startswith("Commands:")


async def test_operator_edits_memory_with_the_admin_group_ephemerally(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    operator = AgentKey("discord", ALICE["id"])
    async with running_bot(
        fake, storage, runtime_settings={"admins": frozenset({operator})}
    ) as bot:
        await bot.adapter.sync_task  # type: ignore[misc]
        [sync] = fake.calls("PUT", f"/applications/{fake.application_id}/commands")
        [group] = [c for c in sync.json if c["name"] == "admin"]
        assert int(group["default_member_permissions"]) == 8  # Administrator only, by default
        assert "set" in [o["name"] for o in group["options"]]
        await bot.dm(BOB, "hello")
        await bot.replies(dm_channel(BOB))
        bob = f"discord:{BOB['id']}"

        async def admin(verb: str, arguments: str, user: dict[str, Any] = ALICE) -> Any:
            interaction = await fake.send_command(
                "admin",
                user,
                subcommand=verb,
                options={"arguments": arguments} if arguments else None,
            )
            return (await _callback(bot, interaction)).json

        saved = await admin("set", f"{bob} human Name: Bob. Collects stamps.")
        assert saved["data"]["flags"] == FLAG_EPHEMERAL and "as v2" in saved["data"]["content"]
        reverted = await admin("revert", f"{bob} human 1")
        assert "saved as v3" in reverted["data"]["content"]
        audit = await admin("audit", "")
        lines = audit["data"]["content"].splitlines()
        assert [line.split()[3] for line in lines[:2]] == ["revert", "set"]
        assert audit["data"]["flags"] == FLAG_EPHEMERAL
        refused = await admin("memory", bob, user=BOB)
        assert refused["data"]["content"] == OPERATORS_ONLY
        assert refused["data"]["flags"] == FLAG_EPHEMERAL


async def test_user_commands_see_search_export_reset_and_forget(bot: Bot) -> None:
    for text in ("I collect vintage maps", "maps from 1850 mostly"):
        await bot.dm(ALICE, text)
    await bot.replies(dm_channel(ALICE), 2)

    async def command(name: str, text: str = "") -> Recorded:
        options = {"words": text} if name == "search" and text else None
        if name == "forget" and text:
            options = {"confirm": text}
        return await _callback(bot, await bot.fake.send_command(name, ALICE, options=options))

    memory = (await command("memory")).json["data"]
    assert memory["flags"] == FLAG_EPHEMERAL and "**human**" in memory["content"]
    found = (await command("search", "maps")).json["data"]["content"]
    assert found.splitlines()[1].endswith("echo: maps from 1850 mostly")  # newest first
    exported = await command("export")
    [(name, data)] = exported.files
    document = json.loads(data)
    texts = [p["text"] for m in document["agents"][0]["messages"] for p in m["content"]]
    assert name.endswith(".af") and "I collect vintage maps" in texts
    assert "Fresh start" in (await command("reset")).json["data"]["content"]
    assert "/forget confirm" in (await command("forget")).json["data"]["content"]
    assert "erased everything" in (await command("forget", "confirm")).json["data"]["content"]
    assert "No messages" in (await command("search", "maps")).json["data"]["content"]
    assert "don't remember" in (await command("memory")).json["data"]["content"]
    await bot.dm(ALICE, "hi again")
    [*_, last] = await bot.replies(dm_channel(ALICE), 3)
    assert last.json["content"] == "echo: hi again"
    agent = await bot.storage.load_agent(AgentKey("discord", ALICE["id"]))
    assert agent is not None and agent.message_count == 2  # a new agent


async def test_messages_left_unanswered_by_a_crash_are_answered_at_start(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    # The platform delivered a message and it was stored, but the process died before
    # answering: accept() without answer() leaves exactly that state.
    route = DiscordRoute(dm_channel(BOB), snowflake(), None).to_json()
    key = AgentKey("discord", BOB["id"])
    left = InboundMessage(key, "still there?", datetime.now(UTC), "Bob", route=route)
    await build_runtime(make_settings(), storage, FunctionLLM(echo), ManualClock()).accept(left)
    async with running_bot(fake, storage) as bot:
        [post] = await bot.replies(dm_channel(BOB))
        assert post.json["content"] == "echo: still there?"


async def _callback(bot: Bot, interaction: dict[str, Any]) -> Recorded:
    path = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    [callback] = await bot.fake.wait_until(lambda: bot.fake.calls("POST", path))
    return callback


# ---------------------------------------------------------------- connection


async def test_a_dropped_gateway_connection_resumes_without_losing_messages(bot: Bot) -> None:
    fake = bot.fake
    await bot.dm(ALICE, "before")
    await bot.replies(dm_channel(ALICE))
    [identify] = fake.sent_ops(OP_IDENTIFY)
    await fake.drop_connection()
    await bot.dm(ALICE, "while away")  # kept by the fake and replayed on RESUME
    [resume] = await fake.wait_until(lambda: fake.sent_ops(OP_RESUME))
    await bot.dm(ALICE, "after")
    answers = await bot.replies(dm_channel(ALICE), 3)
    assert [a.json["content"] for a in answers] == [
        "echo: before",
        "echo: while away",
        "echo: after",
    ]
    assert resume["d"]["session_id"] == fake.session_id()
    assert resume["d"]["seq"] == 3  # READY, GUILD_CREATE, the first message
    assert resume["d"]["token"] == identify["d"]["token"]
    assert len(fake.sent_ops(OP_IDENTIFY)) == 1  # resumed, not a new session
    assert [f["d"].get("content") for f in fake.replayed] == ["while away"]
    assert fake.connections == 2


async def test_heartbeats_are_acknowledged_and_the_connection_stays_up(
    storage: SQLiteStorage,
) -> None:
    async with FakeDiscord(heartbeat_ms=20) as fake, running_bot(fake, storage) as bot:
        await fake.wait_until(lambda: len(fake.sent_ops(OP_HEARTBEAT)) >= 5)
        await bot.dm(ALICE, "still there?")
        [answer] = await bot.replies(dm_channel(ALICE))
        assert answer.json["content"] == "echo: still there?"
        assert fake.connections == 1 and len(fake.sent_ops(OP_IDENTIFY)) == 1
        assert bot.adapter.client.latency < 1.0  # measured from an ACK (inf without one)


async def test_a_sharded_client_finds_the_gateway_through_rest(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    async with running_bot(fake, storage, sharded=True) as bot:
        assert fake.calls("GET", "/gateway/bot")
        [identify] = fake.sent_ops(OP_IDENTIFY)
        assert identify["d"]["shard"] == [0, 1]
        await bot.dm(ALICE, "sharded hello")
        [answer] = await bot.replies(dm_channel(ALICE))
        assert answer.json["content"] == "echo: sharded hello"


async def test_stop_lets_an_answer_in_progress_go_out(
    fake: FakeDiscord, storage: SQLiteStorage
) -> None:
    release = asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        await release.wait()
        return reply("made it")

    async with running_bot(fake, storage) as bot:
        bot.model.answer = slow
        await bot.dm(ALICE, "quick, before you go")
        await bot.model.called.wait()
        stopping = asyncio.create_task(bot.adapter.stop())
        await bot.dm(ALICE, "too late")  # arrives while stopping: not taken
        release.set()
        await stopping
        assert [p.json["content"] for p in fake.posted(dm_channel(ALICE))] == ["made it"]
        assert bot.model.user_texts() == ["quick, before you go"]
        assert bot.adapter.client.is_closed()
        assert await bot.adapter.finished() == 0


# ---------------------------------------------------------------- the real process


def discord_env(tmp_path: Path, fake: FakeDiscord, model_url: str) -> dict[str, str]:
    return bot_env(
        tmp_path,
        model_url,
        DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        # Whole answers, so the first post is the answer (streamed edits have their own tests).
        AGENTCORE_STREAMING__ENABLED="false",
    )


async def start_bot(env: dict[str, str], tmp_path: Path) -> asyncio.subprocess.Process:
    return await spawn_bot(env=env, cwd=tmp_path, stdin=False)


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def ask(fake: FakeDiscord, user: dict[str, Any], text: str) -> str:
    channel = dm_channel(user)
    before = len(fake.posted(channel))
    await fake.send_message(author=user, content=text, channel_id=channel)
    posts = await fake.wait_until(
        lambda: posted if len(posted := fake.posted(channel)) > before else None, within=30
    )
    return str(posts[-1].json["content"])


async def test_two_users_keep_separate_memories_across_a_restart(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    async with FakeOpenAI(remembering_model) as model:
        env = discord_env(tmp_path, fake, model.base_url)
        first = await start_bot(env, tmp_path)
        await fake.wait_until(lambda: len(fake.sent_ops(OP_IDENTIFY)) == 1, within=30)
        assert await ask(fake, ALICE, "My name is Alice") == "Nice to meet you!"
        assert await ask(fake, BOB, "My name is Bob") == "Nice to meet you!"
        first.send_signal(signal.SIGTERM)
        code, err = await finish(first)
        assert code == 0, err
        assert re.search(r"startup: .*discord=\d+ms total=\d+ms", err), err

        second = await start_bot(env, tmp_path)
        await fake.wait_until(lambda: len(fake.sent_ops(OP_IDENTIFY)) == 2, within=30)
        assert await ask(fake, ALICE, "What is my name?") == "Your name is Alice."
        assert await ask(fake, BOB, "What is my name?") == "Your name is Bob."
        carol = user_payload(snowflake(), "Carol")
        assert await ask(fake, carol, "What is my name?") == "I don't know yet."
        second.send_signal(signal.SIGTERM)
        code, err = await finish(second)
    assert code == 0, err
    assert "Traceback" not in err and fake.token not in err


@pytest.mark.parametrize(
    ("breakage", "fix"),
    [
        ("bad token", "set DISCORD_TOKEN to the token shown under Developer Portal"),
        ("missing intent", "Privileged Gateway Intents → Message Content Intent"),
    ],
)
async def test_a_fatal_setup_error_is_one_clear_line_and_a_nonzero_exit(
    fake: FakeDiscord, tmp_path: Path, breakage: str, fix: str
) -> None:
    if breakage == "bad token":
        fake.reject_token = True
    else:
        fake.close_code_after_identify = 4014
    process = await start_bot(discord_env(tmp_path, fake, "http://127.0.0.1:9/v1"), tmp_path)
    code, err = await finish(process)
    assert code == 1
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and fix in errors[0], err
    assert "Traceback" not in err and fake.token not in err


@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_text_is_answered_without_pings(bot: Bot, name: str) -> None:
    await bot.dm(ALICE, CORPUS[name][:2000])  # Discord caps a message at 2000 characters
    posts = await bot.replies(dm_channel(ALICE))
    for post in posts:
        assert post.json.get("allowed_mentions", {}).get("parse") == []
        assert len(post.json.get("content") or "") <= 2000
