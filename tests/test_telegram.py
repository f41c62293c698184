"""The Telegram adapter end to end: the real python-telegram-bot client, pointed through its base
URL at a fake Bot API server on 127.0.0.1, over the real runtime, SQLite and a scripted model."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from telegram import Update

from agentcore.clock import ManualClock
from agentcore.commands import USER_COMMANDS
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, call, last_user_text, opens_turn, reply, system_text
from agentcore.memory.prompt import GROUP_NOTE
from agentcore.messages import Role
from agentcore.runtime import SLOW_DOWN, AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import Attachment, ChatKind, InboundMessage, Reply
from bots.compose import build_runtime
from bots.telegram import TelegramAdapter, build_application
from bots.telegram.adapter import TEXT_ONLY
from bots.telegram.poller import STALE_CONFLICTS, TOKEN_HELP
from bots.telegram.send import ASK_PRIVATELY, SENT_PRIVATELY, Destination, ReplySender
from bots.telegram.translate import BotIdentity, Route, translate
from tests.conftest import make_settings
from tests.fakes.telegram_server import PHOTO, STICKER, VOICE, Call, Chat, FakeTelegram, User
from tests.hostile import CORPUS

ALICE = User(1001, "Alice", "alice_w")
BOB = User(1002, "Bob", "bob_b")
GROUP = Chat(-100555, "supergroup", "Friends")
FAST: dict[str, Any] = {"retry_delays": (0.01, 0.01, 0.01), "backoff": (0.01, 0.05)}


def remembering(request: LLMRequest) -> LLMResponse:
    """Saves "My name is X" to core memory and answers "what is my name" from the prompt."""
    if request.messages[-1].role is Role.TOOL:
        return reply("Noted.")
    text = last_user_text(request)
    said = re.search(r"My name is (\w+)", text)
    if said:
        return call("core_memory_append", label="human", content=f"Name: {said[1]}")
    if "my name" in text.lower():
        known = re.search(r"Name: (\w+)", system_text(request))
        return reply(f"Your name is {known[1]}." if known else "I don't know yet.")
    return reply(f"echo: {text}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


class Model:
    """The scripted model; a test swaps ``respond`` to change how it answers."""

    def __init__(self) -> None:
        self.respond: Callable[[LLMRequest], LLMResponse | Awaitable[LLMResponse]] = remembering

    def __call__(self, request: LLMRequest) -> LLMResponse | Awaitable[LLMResponse]:
        return self.respond(request)


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def llm(model: Model) -> FunctionLLM:
    return FunctionLLM(model)


@pytest.fixture
async def runtime(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> AsyncIterator[AgentRuntime]:
    runtime = build_runtime(make_settings(), storage, llm, clock)
    yield runtime
    await runtime.shutdown()


@asynccontextmanager
async def running(
    fake: FakeTelegram, runtime: AgentRuntime, **options: Any
) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime, **FAST | options)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


@pytest.fixture
async def bot(fake: FakeTelegram, runtime: AgentRuntime) -> AsyncIterator[TelegramAdapter]:
    async with running(fake, runtime) as adapter:
        yield adapter


def user_texts(llm: FunctionLLM) -> list[str]:
    """What the model was asked, newest user message of each request, in order."""
    return [last_user_text(r) for r in llm.requests if opens_turn(r)]


# ---------------------------------------------------------------------- private chats


async def test_two_private_users_keep_separate_memories(
    fake: FakeTelegram, bot: TelegramAdapter
) -> None:
    fake.private(ALICE, "My name is Alice")
    fake.private(BOB, "My name is Bob")
    await fake.wait_until(lambda: fake.texts(ALICE.id) == ["Noted."] == fake.texts(BOB.id))
    fake.private(ALICE, "What is my name?")
    fake.private(BOB, "What is my name?")
    await fake.wait_for_messages(ALICE.id, 2)
    await fake.wait_for_messages(BOB.id, 2)
    assert fake.texts(ALICE.id)[1] == "Your name is Alice."
    assert fake.texts(BOB.id)[1] == "Your name is Bob."


async def test_start_up_registers_the_command_menu_and_polls_for_messages_only(
    fake: FakeTelegram, bot: TelegramAdapter
) -> None:
    await fake.wait_until(lambda: bool(fake.commands and fake.polls))
    assert fake.commands == [
        {"command": c.name, "description": c.description} for c in USER_COMMANDS
    ]
    assert fake.webhook_deleted == 1
    assert fake.polls[0].params["allowed_updates"] == ["message"]


async def test_commands_reach_the_core_and_unknown_ones_get_a_hint(
    fake: FakeTelegram, bot: TelegramAdapter, llm: FunctionLLM
) -> None:
    fake.private(ALICE, "/start")
    fake.private(ALICE, "/memory")
    fake.private(ALICE, "/frobnicate now")
    await fake.wait_for_messages(ALICE.id, 3)
    start, memory, unknown = fake.texts(ALICE.id)
    assert "remember" in start
    assert "I don't remember anything about you yet." in memory
    assert "I don't know the command /frobnicate" in unknown and "/help" in unknown
    assert llm.requests == []  # commands are answered by the core, not the model


async def test_unreadable_content_gets_a_notice_and_a_caption_is_text(
    fake: FakeTelegram, bot: TelegramAdapter, llm: FunctionLLM
) -> None:
    fake.private(ALICE, sticker=STICKER)
    fake.private(ALICE, voice=VOICE)  # a file Telegram no longer has
    fake.private(ALICE, photo=PHOTO, caption="This is my cat Tom")
    await fake.wait_for_messages(ALICE.id, 4)
    texts = fake.texts(ALICE.id)
    assert texts.count(TEXT_ONLY) == 1
    assert texts.count("I couldn't download voice.ogg; please send it again.") == 1
    assert "echo: [file photo.jpg: could not be fetched]\nThis is my cat Tom" in texts
    assert user_texts(llm) == ["[file photo.jpg: could not be fetched]\nThis is my cat Tom"]


async def test_edited_messages_are_ignored(
    fake: FakeTelegram, bot: TelegramAdapter, llm: FunctionLLM
) -> None:
    # Telegram may still deliver kinds we did not ask for (updates made before the request).
    fake.private(ALICE, "I meant something else", kind="edited_message")
    fake.private(ALICE, "hello")
    await fake.wait_for_messages(ALICE.id, 1)
    await fake.wait_until(lambda: fake.unconfirmed == [])
    assert fake.texts(ALICE.id) == ["echo: hello"]
    assert user_texts(llm) == ["hello"]


async def test_one_persons_messages_stay_in_order_and_others_run_meanwhile(
    fake: FakeTelegram, runtime: AgentRuntime, model: Model
) -> None:
    release = asyncio.Event()

    async def slow_for_alice(request: LLMRequest) -> LLMResponse:
        if "slow" in last_user_text(request):
            await release.wait()
        return remembering(request)

    model.respond = slow_for_alice
    async with running(fake, runtime):
        fake.private(ALICE, "slow: My name is Alice")
        fake.private(ALICE, "/memory")  # must not overtake the turn before it
        fake.private(BOB, "hi from Bob")
        await fake.wait_for_messages(BOB.id, 1)  # Bob is answered while Alice's turn waits
        assert fake.texts(ALICE.id) == []
        release.set()
        await fake.wait_for_messages(ALICE.id, 2)
    first, memory = fake.texts(ALICE.id)
    assert first == "Noted."
    assert "Name: Alice" in memory


async def test_typing_is_shown_and_refreshed_until_the_reply(
    fake: FakeTelegram, runtime: AgentRuntime, model: Model
) -> None:
    release = asyncio.Event()

    async def thinking(request: LLMRequest) -> LLMResponse:
        await release.wait()
        return reply("done thinking")

    model.respond = thinking
    async with running(fake, runtime, typing_interval=0.02):
        fake.private(ALICE, "think hard")
        await fake.wait_until(lambda: len(fake.actions) >= 3)
        release.set()
        await fake.wait_for_messages(ALICE.id, 1)
    answer = fake.to_chat(ALICE.id)[0]
    typing = [at for chat, action, at in fake.actions if chat == ALICE.id and action == "typing"]
    assert len([at for at in typing if at < answer.at]) >= 3
    assert {(chat, action) for chat, action, _ in fake.actions} == {(ALICE.id, "typing")}


# ---------------------------------------------------------------------- groups


async def test_group_messages_are_answered_only_when_addressed(
    fake: FakeTelegram, bot: TelegramAdapter, llm: FunctionLLM
) -> None:
    fake.private(ALICE, "My name is Alice")
    await fake.wait_for_messages(ALICE.id, 1)
    fake.message(ALICE, GROUP, "just chatting with friends")
    fake.message(BOB, GROUP, "/help")  # a command for whichever bot: not addressed to us
    asked = fake.message(ALICE, GROUP, "@memo_test_bot what is my name?")
    await fake.wait_for_messages(GROUP.id, 1)
    mention_reply = fake.to_chat(GROUP.id)[0]
    assert mention_reply.plain == "Your name is Alice."  # Alice's own agent answers
    assert mention_reply.reply_to == fake.updates[asked]["message"]["message_id"]  # quoted
    fake.message(BOB, GROUP, "thanks", reply_to=mention_reply)
    fake.message(BOB, GROUP, "/help@memo_test_bot")
    await fake.wait_for_messages(GROUP.id, 3)
    texts = fake.texts(GROUP.id)
    assert texts[1] == "echo: thanks" and texts[2].startswith("Commands:")
    assert user_texts(llm) == ["My name is Alice", "what is my name?", "thanks"]
    group_requests = [r for r in llm.requests if GROUP_NOTE in system_text(r)]
    assert [last_user_text(r) for r in group_requests] == ["what is my name?", "thanks"]
    await fake.wait_until(lambda: fake.unconfirmed == [])
    assert len(fake.to_chat(GROUP.id)) == 3  # the unaddressed messages got nothing


async def test_private_replies_asked_for_in_a_group_never_appear_there(
    fake: FakeTelegram, bot: TelegramAdapter
) -> None:
    fake.private(ALICE, "My name is Alice")
    await fake.wait_for_messages(ALICE.id, 1)
    alice_asks = fake.message(ALICE, GROUP, "/memory@memo_test_bot")
    bob_asks = fake.message(BOB, GROUP, "/memory@memo_test_bot")  # never wrote to the bot
    await fake.wait_for_messages(GROUP.id, 2)
    pointers = {s.reply_to: s.plain for s in fake.to_chat(GROUP.id)}  # answers run concurrently
    assert pointers == {
        fake.updates[alice_asks]["message"]["message_id"]: SENT_PRIVATELY,
        fake.updates[bob_asks]["message"]["message_id"]: ASK_PRIVATELY.format(
            username="memo_test_bot"
        ),
    }
    assert "Name: Alice" in fake.texts(ALICE.id)[1]
    assert all("Name:" not in s.plain for s in fake.to_chat(GROUP.id))


# ---------------------------------------------------------------------- replies


LINES = 330


def long_answer() -> str:
    code = "\n".join(f"print('line {i:04d}')" for i in range(LINES))
    return "Here is the plan.\n\n" + "Step by step. " * 200 + f"\n\n```python\n{code}\n```\n\nDone."


async def test_a_9000_character_reply_arrives_in_ordered_parts_with_whole_code_blocks(
    fake: FakeTelegram, runtime: AgentRuntime, model: Model
) -> None:
    answer = long_answer()
    assert len(answer) > 9000
    model.respond = lambda request: reply(answer)
    async with running(fake, runtime):
        fake.private(ALICE, "explain everything")
        await fake.wait_until(lambda: any("Done." in s.plain for s in fake.to_chat(ALICE.id)))
    parts = fake.to_chat(ALICE.id)
    assert len(parts) >= 3
    assert all(p.parse_mode == "HTML" and len(p.plain) <= 4096 for p in parts)
    # Every part parsed (so every <pre> was closed), and the code reads back whole, in order.
    code = "\n".join(block for p in parts for block in p.pre)
    assert code.split("\n") == [f"print('line {i:04d}')" for i in range(LINES)]
    assert parts[0].plain.startswith("Here is the plan.") and parts[-1].plain.endswith("Done.")
    words = " ".join(p.plain for p in parts).split()
    assert words == answer.replace("```python", "").replace("```", "").split()


async def test_formatting_refused_by_telegram_is_resent_plain(
    fake: FakeTelegram, runtime: AgentRuntime, model: Model
) -> None:
    model.respond = lambda request: reply("**Hello** there")
    fake.inject(
        "sendMessage",
        400,
        "Bad Request: can't parse entities: Can't find end of the entity starting at byte 0",
        when=lambda params: params.get("parse_mode") == "HTML",
    )
    async with running(fake, runtime):
        fake.private(ALICE, "hi")
        await fake.wait_for_messages(ALICE.id, 1)
    [sent] = fake.to_chat(ALICE.id)
    assert sent.parse_mode is None and sent.text == "**Hello** there"


async def test_flood_control_delays_but_loses_nothing(
    fake: FakeTelegram, bot: TelegramAdapter
) -> None:
    fake.inject("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    for i in range(3):
        fake.private(ALICE, f"message {i}")
    await fake.wait_for_messages(ALICE.id, 3)
    assert fake.texts(ALICE.id) == [f"echo: message {i}" for i in range(3)]
    refused = next(c for c in fake.calls if c.status == 429)
    assert fake.to_chat(ALICE.id)[0].at - refused.at >= 1.0  # it waited as told


async def test_messages_over_the_rate_limit_are_answered_a_little_later(
    fake: FakeTelegram, storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    settings = make_settings(runtime={"rate_limit_per_minute": 1, "held_answer_seconds": 0.1})
    runtime = build_runtime(settings, storage, llm, clock)
    async with running(fake, runtime):
        for i in range(3):
            fake.private(ALICE, f"message {i}")
        await fake.wait_for_messages(ALICE.id, 3)  # nothing more is sent by Alice
    assert await storage.list_pending() == []
    await runtime.shutdown()
    first, notice, later = fake.texts(ALICE.id)
    assert {first, notice} == {"echo: message 0", SLOW_DOWN}  # the notice needs no turn
    assert later == "echo: message 2"
    conversation = [m for m in llm.requests[-1].messages if m.role is not Role.SYSTEM]
    assert [m.content for m in conversation[-2:]] == ["message 1", "message 2"]  # together


async def test_server_errors_are_retried(fake: FakeTelegram, bot: TelegramAdapter) -> None:
    fake.inject("sendMessage", 502, "Bad Gateway", times=2)
    fake.inject("getUpdates", 500, "Internal Server Error", times=2)
    fake.private(ALICE, "still there?")
    await fake.wait_for_messages(ALICE.id, 1)
    assert fake.texts(ALICE.id) == ["echo: still there?"]
    assert [c.status for c in fake.calls if c.method == "sendMessage"] == [502, 502, 200]


async def test_files_go_out_as_documents(fake: FakeTelegram, bot: TelegramAdapter) -> None:
    fake.private(ALICE, "hi")  # opens the chat
    await fake.wait_for_messages(ALICE.id, 1)
    application = build_application(fake.token, fake.root)
    await application.initialize()
    sender = ReplySender(application.bot)
    export = Attachment("memory.af", b'{"agents": []}', "application/json")
    to = Destination(Route(ALICE.id, 1), ChatKind.PRIVATE, ALICE.id)
    await sender.send(Reply("Your export:", attachments=(export,)), to)
    await sender.send(Reply("   "), to)  # an empty reply sends nothing
    await application.shutdown()
    [document] = fake.to_chat(ALICE.id, "sendDocument")
    assert document.document == ("memory.af", b'{"agents": []}')
    assert fake.texts(ALICE.id) == ["echo: hi", "Your export:"]


async def test_answers_in_a_forum_topic_stay_in_that_topic(
    fake: FakeTelegram, bot: TelegramAdapter
) -> None:
    forum = Chat(-100777, "supergroup", "Forum", is_forum=True)
    asked = fake.message(ALICE, forum, "@memo_test_bot hello", thread_id=55)
    await fake.wait_for_messages(forum.id, 1)
    [answer] = fake.to_chat(forum.id)
    assert answer.plain == "echo: hello" and answer.thread_id == 55
    assert answer.reply_to == fake.updates[asked]["message"]["message_id"]
    typing = [c.params for c in fake.calls if c.method == "sendChatAction"]
    assert typing == [{"chat_id": forum.id, "action": "typing", "message_thread_id": 55}]


# ---------------------------------------------------------------------- delivery guarantees


class RecordingStorage:
    """SQLite storage that remembers which Telegram updates are stored, for ack checks."""

    def __init__(self, inner: SQLiteStorage) -> None:
        self._inner = inner
        self.stored_updates: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add_pending(self, message: InboundMessage, received_at: Any) -> int | None:
        pending_id = await self._inner.add_pending(message, received_at)
        update_id = Route.from_json(message.route).update_id
        assert update_id is not None
        self.stored_updates.add(update_id)
        return pending_id


async def test_an_update_is_confirmed_only_after_it_is_stored(
    fake: FakeTelegram, storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    recording = RecordingStorage(storage)
    runtime = build_runtime(make_settings(), recording, llm, clock)
    confirmations: list[tuple[int, set[int]]] = []  # (offset, updates stored at that moment)

    def on_request(call: Call) -> None:
        if call.method == "getUpdates" and call.params.get("offset"):
            confirmations.append((call.params["offset"], set(recording.stored_updates)))

    fake.observers.append(on_request)
    async with running(fake, runtime):
        for i in range(3):
            fake.private(ALICE, f"a{i}")
            fake.private(BOB, f"b{i}")
        await fake.wait_until(lambda: len(fake.to_chat(ALICE.id) + fake.to_chat(BOB.id)) == 6)
    assert fake.unconfirmed == [] and confirmations
    for offset, stored in confirmations:
        assert set(range(1, offset)) <= stored  # nothing was confirmed before it was stored


async def test_after_a_crash_a_stored_message_is_answered_once(
    fake: FakeTelegram, runtime: AgentRuntime, llm: FunctionLLM, storage: SQLiteStorage
) -> None:
    """The process stored an update and died before answering or confirming it: Telegram
    delivers it again, and the restarted bot answers it exactly once."""
    update_id = fake.private(ALICE, "are you there?")
    update = Update.de_json(fake.updates[update_id], None)
    stored = translate(update, BotIdentity(fake.me.id, fake.me.username or ""))
    assert isinstance(stored, InboundMessage)
    await runtime.accept(stored)  # ...and then the crash
    async with running(fake, runtime):
        await fake.wait_until(lambda: fake.texts(ALICE.id) == ["echo: are you there?"])
        fake.private(ALICE, "hello again")
        await fake.wait_until(lambda: len(fake.texts(ALICE.id)) == 2)
    assert fake.texts(ALICE.id) == ["echo: are you there?", "echo: hello again"]
    assert user_texts(llm) == ["are you there?", "hello again"]
    assert fake.unconfirmed == []
    agent = await storage.load_agent(stored.key)
    assert agent is not None
    history = await storage.all_messages(agent.id)
    assert [m.content for m in history if m.role is Role.USER] == ["are you there?", "hello again"]


async def test_stop_lets_a_running_answer_go_out_and_confirms_what_was_stored(
    fake: FakeTelegram, runtime: AgentRuntime, model: Model
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(request: LLMRequest) -> LLMResponse:
        started.set()
        await release.wait()
        return reply("worth the wait")

    model.respond = slow
    adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime, **FAST)
    await adapter.start()
    fake.private(ALICE, "take your time")
    await started.wait()
    stopping = asyncio.create_task(adapter.stop())
    # The poller has stopped (its last, short getUpdates confirms what was stored)...
    await fake.wait_until(lambda: any(p.params.get("timeout") == 0 for p in fake.polls))
    assert fake.texts(ALICE.id) == []
    release.set()  # ...and the answer in progress still goes out before stop() returns
    await stopping
    assert fake.texts(ALICE.id) == ["worth the wait"]
    assert fake.unconfirmed == []
    assert adapter.name == "telegram"
    await adapter.stop()  # idempotent


async def test_a_second_instance_conflict_is_one_clear_line_and_exit_1(
    fake: FakeTelegram, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(
        "getUpdates",
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running",
    )
    caplog.set_level(logging.INFO)
    async with running(fake, runtime) as adapter:
        assert await asyncio.wait_for(adapter.finished(), 10) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "409 Conflict" in errors[0] and "Traceback" not in caplog.text
    assert len(fake.polls) == 1  # no retry loop


async def test_a_shared_poller_polls_through_a_replaced_pollers_last_conflicts(
    fake: FakeTelegram, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """With other processes on the database, a 409 may be the last getUpdates of a poller that
    was paused and replaced: the elected poller polls again (a few times in a row at most)."""
    conflict = "Conflict: terminated by other getUpdates request"
    fake.inject("getUpdates", 409, conflict, times=STALE_CONFLICTS)
    caplog.set_level(logging.INFO)
    async with running(fake, runtime, shared=True) as adapter:
        fake.private(ALICE, "My name is Alice")
        await fake.wait_until(lambda: fake.texts(ALICE.id) == ["Noted."])
        assert len([p for p in fake.polls if p.params.get("timeout") != 0]) > STALE_CONFLICTS
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # More in a row than a replaced poller can cause: another instance polls; exit 1 as alone.
    fake.inject("getUpdates", 409, conflict, times=STALE_CONFLICTS + 1)
    async with running(fake, runtime, shared=True) as adapter:
        assert await asyncio.wait_for(adapter.finished(), 10) == 1


async def test_a_webhook_that_cannot_be_served_is_one_clear_line_and_exit_1(
    fake: FakeTelegram, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:  # another program listens there already
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        webhook = ("https://bot.example.com/telegram", ("127.0.0.1", taken.getsockname()[1]))
        async with running(fake, runtime, webhook=webhook) as adapter:
            assert await asyncio.wait_for(adapter.finished(), 10) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "cannot serve the Telegram webhook" in errors[0], errors
    assert fake.webhook is None and fake.polls == []  # Telegram was not told to use it


async def test_a_rejected_token_is_one_clear_line_and_exit_1(
    fake: FakeTelegram, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    application = build_application("999:wrong-token", fake.root)
    adapter = TelegramAdapter(application, runtime, **FAST)
    await adapter.start()
    assert await asyncio.wait_for(adapter.finished(), 10) == 1
    await adapter.stop()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bots")]
    assert ours == [TOKEN_HELP]
    assert fake.polls == []


async def test_flaky_get_updates_is_logged_once_per_outage(
    fake: FakeTelegram, bot: TelegramAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bots.telegram")
    fake.inject("getUpdates", 502, "Bad Gateway", times=3)
    fake.private(ALICE, "ping")  # ends the long poll in flight; the next three polls fail
    await fake.wait_until(lambda: [c.status for c in fake.polls].count(502) == 3)
    fake.private(ALICE, "pong")
    await fake.wait_for_messages(ALICE.id, 2)
    assert fake.texts(ALICE.id) == ["echo: ping", "echo: pong"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "getUpdates failed" in warnings[0]
    assert any("works again after 3 failure(s)" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_text_is_answered_and_renders(
    fake: FakeTelegram, bot: TelegramAdapter, name: str
) -> None:
    fake.private(ALICE, CORPUS[name][:4096])  # Telegram itself caps a message at 4096
    await fake.wait_until(lambda: len(fake.texts(ALICE.id)) >= 1)
    [sent] = fake.to_chat(ALICE.id)[:1]
    assert sent.plain  # accepted by the fake's strict HTML parser (or sent plain)
