"""Answers shown as they are written: what may be shown (never reasoning or tool-call markup),
and a long streamed answer on Telegram and Discord through the real clients and the real
``openai`` SDK against the fake server streaming at a set token rate, with the edit pacing read
from the fakes' own timestamps."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.llm.visible import VisibleText
from agentcore.messages import PromptMessage, Role
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, ReplyKind
from bots.compose import build_runtime
from bots.console import ConsoleAdapter
from bots.discord import DiscordAdapter
from bots.discord.connect import make_client, point_at
from bots.streaming import GrowingReply, Pacing, RateLimited
from bots.telegram import TelegramAdapter, build_application
from bots.telegram.render import MAX_MESSAGE, to_html
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord, snowflake, user_payload
from tests.fakes.openai_server import Completion, FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram, User

ALICE = User(1001, "Alice", "alice_w")
PARAGRAPH = (
    "The lighthouse at the end of the harbour was built in 1867 and has been kept by the "
    "same family for four generations, each of them writing the weather in a ledger. "
)


def long_answer(paragraphs: int = 30) -> str:
    return "\n\n".join(f"{i}. {PARAGRAPH}" for i in range(paragraphs))


def visible_after(deltas: list[str]) -> list[str]:
    text = VisibleText()
    return [text.feed(d) for d in deltas]


# ---------------------------------------------------------------------- what may be shown


def test_reasoning_is_never_shown() -> None:
    shown = visible_after(["<thi", "nk>the user wants", " a poem</think>", "Roses are", " red"])
    assert shown == ["", "", "", "Roses are", "Roses are red"]


@pytest.mark.parametrize(
    "markup",
    [
        '<tool_call>{"name": "conversation_search"}</tool_call>',
        '[TOOL_CALLS][{"name": "x"}]',
        '<|python_tag|>{"name": "x"}',
        '<function=archival_memory_search>{"query": "x"}</function>',
    ],
)
def test_a_tool_call_written_as_text_is_never_shown(markup: str) -> None:
    deltas = ["Let me look. ", *[markup[i : i + 3] for i in range(0, len(markup), 3)], " done"]
    shown = visible_after(deltas)
    assert all(not s or s == "Let me look." for s in shown)
    assert shown[-1] == "Let me look."


def test_an_answer_that_opens_like_json_waits_and_a_lone_bracket_is_kept() -> None:
    assert visible_after(['{"name": ', '"send_message"}']) == ["", ""]
    assert visible_after(["a < b and ", "c [1] is fine"])[-1] == "a < b and c [1] is fine"


async def test_a_tool_step_streams_nothing() -> None:
    def tool_step(body: dict[str, Any]) -> Completion:
        return Completion("", [("conversation_search", {"query": "dog"})])

    shown: list[str] = []

    async def sink(text: str) -> None:
        shown.append(text)

    async with FakeOpenAI(tool_step) as server:
        llm = OpenAICompatibleLLM(model="m", base_url=server.base_url, api_key="k")
        request = LLMRequest((PromptMessage(Role.USER, "hi"),), stream=sink)
        response = await llm.complete(request)
        await llm.close()
    assert shown == [] and response.tool_calls[0].name == "conversation_search"
    [measured] = server.cache.measured
    assert response.usage is not None and response.usage.prompt_tokens == measured.prompt_tokens


# ---------------------------------------------------------------------- pacing


class Editor:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.limited = 0
        self.sent = asyncio.Event()

    async def send(self, text: str) -> str | None:
        self.log.append(("send", text))
        self.sent.set()
        return str(len(self.log))

    async def edit(self, message_id: str, text: str) -> bool:
        if self.limited:
            self.limited -= 1
            raise RateLimited(0.3)
        self.log.append((f"edit {message_id}", text))
        return True

    async def delete(self, message_id: str) -> None:
        self.log.append((f"delete {message_id}", ""))


async def test_the_newest_text_is_shown_at_most_once_per_interval_and_429_waits() -> None:
    editor = Editor()
    editor.limited = 1
    pacing = Pacing(0.2, 100.0)
    reply = GrowingReply(editor, lambda t: [t], pacing, "chat")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for word in ["one", "one two", "one two three"]:
        await reply.grow(word)
    await editor.sent.wait()  # the first send goes out at once, with the newest text
    await reply.grow("one two three four")
    assert await reply.finish("one two three four five")
    elapsed = loop.time() - started
    assert editor.log == [("send", "one two three"), ("edit 1", "one two three four five")]
    assert elapsed >= 0.2 + 0.3  # the interval, then the platform's wait
    assert pacing.active == 0


async def test_an_answer_taken_over_elsewhere_is_taken_back_and_not_finished() -> None:
    """This process lost the person's lock mid-answer and another one answered them: what was
    shown is deleted, once; a finished answer is left alone."""
    editor = Editor()
    pacing = Pacing(0.0, 100.0)
    reply = GrowingReply(editor, lambda t: [t[i : i + 5] for i in range(0, len(t), 5)], pacing, 1)
    await reply.grow("tok=d1 seq")
    await editor.sent.wait()
    await reply.abandon()
    await reply.abandon()
    assert not await reply.finish("tok=d1 seq=3")
    sent = [message for action, message in editor.log if action == "send"]
    deleted = [action for action, _ in editor.log if action.startswith("delete")]
    assert sent and deleted == [f"delete {n}" for n in range(1, len(sent) + 1)]
    assert pacing.active == 0
    finished = GrowingReply(editor, lambda t: [t], pacing, 2)
    await finished.grow("done")
    assert await finished.finish("done.")
    logged = len(editor.log)
    await finished.abandon()
    assert len(editor.log) == logged and pacing.active == 0


def test_pacing_slows_down_when_many_answers_stream() -> None:
    pacing = Pacing(1.0, 20.0)
    for chat in range(60):
        pacing.join(chat)
    assert pacing.interval() == 3.0


class RecordingTerminal:
    """A terminal that keeps what it was given to show, to see what came when."""

    interactive = False
    closed = False

    def __init__(self) -> None:
        self.grown: list[str] = []
        self.shown: list[str] = []

    async def read_line(self) -> str | None:
        return None

    def show(self, text: str, kind: ReplyKind) -> None:
        self.shown.append(text)

    def grow(self, text: str) -> None:
        self.grown.append(text)

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


async def test_the_terminal_prints_tokens_as_they_come(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    async with FakeOpenAI(lambda body: Completion("Hello there, Brad!")) as server:
        llm = OpenAICompatibleLLM(model="m", base_url=server.base_url, api_key="k")
        runtime = build_runtime(make_settings(agent={"stream": True}), storage, llm, clock)
        console = ConsoleAdapter(runtime, clock, AgentKey("console", "brad"))
        terminal = RecordingTerminal()
        console._terminal = terminal
        message = console._message(terminal, "hi")
        assert message is not None
        await console._show(terminal, await runtime.handle(message, console))
        await runtime.shutdown()
    assert terminal.grown == ["Hello", "Hello there,", "Hello there, Brad!"]
    assert terminal.shown == ["Hello there, Brad!"]


# ---------------------------------------------------------------------- Telegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def streaming(
    storage: SQLiteStorage, clock: ManualClock
) -> AsyncIterator[tuple[FakeOpenAI, AgentRuntime]]:
    answer = Completion(long_answer(), token_rate=400)
    async with FakeOpenAI(lambda body: answer) as server:
        llm = OpenAICompatibleLLM(model="m", base_url=server.base_url, api_key="k")
        runtime = build_runtime(make_settings(agent={"stream": True}), storage, llm, clock)
        yield server, runtime
        await runtime.shutdown()


async def test_a_long_streamed_answer_continues_in_a_second_telegram_message(
    fake: FakeTelegram, streaming: tuple[FakeOpenAI, AgentRuntime], storage: SQLiteStorage
) -> None:
    server, runtime = streaming
    adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime)
    await adapter.start()
    try:
        fake.private(ALICE, "tell me about the lighthouse")
        agent_key = AgentKey("telegram", str(ALICE.id))
        await fake.wait_until(lambda: len(fake.to_chat(ALICE.id)) == 2, within=30)
        stored = await _stored_reply(storage, agent_key)
        await fake.wait_until(lambda: _shown(fake) == _words(stored), within=30)
    finally:
        await adapter.stop()
    sends = fake.to_chat(ALICE.id)
    edits = fake.to_chat(ALICE.id, "editMessageText")
    assert len(sends) == 2 and len(long_answer()) > MAX_MESSAGE
    assert edits, "the answer grew by edits"
    moments = sorted(s.at for s in [*sends, *edits])
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert min(gaps) >= 0.9, gaps  # paced: at most one edit a second in the chat
    assert sends[0].at - server.first_token_at[0] < 1.0  # the first words show at once
    assert all(s.parse_mode == "HTML" for s in [*sends, *edits])


async def test_telegram_429_on_an_edit_waits_as_asked(
    fake: FakeTelegram, streaming: tuple[FakeOpenAI, AgentRuntime], storage: SQLiteStorage
) -> None:
    _, runtime = streaming
    fake.inject("editMessageText", 429, "Too Many Requests: retry after 2", retry_after=2)
    await _lighthouse_asked_and_shown(fake, runtime, storage, rate_limited=False)
    refused = next(c for c in fake.calls if c.status == 429)
    after = [c.at for c in fake.calls if c.method == "editMessageText" and c.at > refused.at]
    assert after and after[0] - refused.at >= 1.9


async def test_an_edit_telegram_cannot_parse_is_shown_plain_and_the_next_is_formatted(
    fake: FakeTelegram, streaming: tuple[FakeOpenAI, AgentRuntime], storage: SQLiteStorage
) -> None:
    """Markdown cut off mid-stream can make HTML Telegram refuses; that edit goes as plain
    text, the answer keeps growing, and the edits after it are formatted again."""
    _, runtime = streaming
    fake.inject(
        "editMessageText",
        400,
        "Bad Request: can't parse entities: Can't find end of the entity starting at byte 12",
        when=lambda params: params.get("parse_mode") == "HTML",
    )
    await _lighthouse_asked_and_shown(fake, runtime, storage)
    edits = [c for c in fake.calls if c.method == "editMessageText"]
    refused = next(i for i, c in enumerate(edits) if c.status == 400)
    retried, *later = edits[refused + 1 :]
    assert retried.status == 200 and "parse_mode" not in retried.params
    assert to_html(retried.params["text"]) == edits[refused].params["text"]  # the same text
    assert later and all(c.params.get("parse_mode") == "HTML" for c in later)
    assert all(c.status == 200 for c in later)


async def _lighthouse_asked_and_shown(
    fake: FakeTelegram, runtime: AgentRuntime, storage: SQLiteStorage, *, rate_limited: bool = True
) -> None:
    """Alice asks in a private chat; returns once she sees the whole stored answer."""
    application = build_application(fake.token, fake.root, rate_limited=rate_limited)
    adapter = TelegramAdapter(application, runtime)
    await adapter.start()
    try:
        fake.private(ALICE, "tell me about the lighthouse")
        stored = await _stored_reply(storage, AgentKey("telegram", str(ALICE.id)))
        await fake.wait_until(lambda: _shown(fake) == _words(stored), within=30)
    finally:
        await adapter.stop()


async def _stored_reply(storage: SQLiteStorage, key: AgentKey) -> str:
    """The assistant's stored answer, once the turn has stored it."""
    for _ in range(600):
        agent = await storage.load_agent(key)
        if agent is not None:
            rows = await storage.all_messages(agent.id)
            answers = [r.content for r in rows if r.role is Role.ASSISTANT and r.content]
            if answers:
                return answers[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("no answer was stored")


def _shown(fake: FakeTelegram) -> list[str]:
    """The words a person sees now: each message as last sent or edited."""
    latest: dict[int, str] = {}
    for sent in fake.sent:
        if sent.chat_id == ALICE.id:
            latest[sent.message_id] = sent.plain
    return _words("\n".join(latest[m] for m in sorted(latest)))


def _words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------- Discord


async def test_discord_edits_its_reply_as_the_answer_grows(
    streaming: tuple[FakeOpenAI, AgentRuntime], storage: SQLiteStorage
) -> None:
    _, runtime = streaming
    channel = snowflake()
    async with FakeDiscord() as fake:
        await _discord_lighthouse_asked_and_shown(fake, runtime, storage, channel)
        posts, edits = fake.posted(channel), fake.edits(channel)
    assert len(posts) == 3  # 2,000 characters a message
    assert edits
    moments = sorted(r.at for r in [*posts, *edits])
    assert min(b - a for a, b in itertools.pairwise(moments)) >= 0.9


async def test_discord_429_on_an_edit_is_waited_out_and_the_edit_still_lands(
    streaming: tuple[FakeOpenAI, AgentRuntime],
    storage: SQLiteStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, runtime = streaming
    channel = snowflake()
    async with FakeDiscord() as fake:
        fake.fail_next("PATCH", f"/channels/{channel}/messages/", retry_after=1.5)
        await _discord_lighthouse_asked_and_shown(fake, runtime, storage, channel)
        refused, retried, *_ = fake.edits(channel)  # the first edit met the rate limit
    assert retried.path == refused.path and retried.json == refused.json  # the same edit, again
    assert retried.at - refused.at >= 1.4  # after the wait Discord asked for
    assert "could not edit" not in caplog.text


async def _discord_lighthouse_asked_and_shown(
    fake: FakeDiscord, runtime: AgentRuntime, storage: SQLiteStorage, channel: int
) -> None:
    """Alice asks in ``channel``; returns once it shows the whole stored answer."""
    point_at(fake.api_base, fake.gateway_url)
    adapter = DiscordAdapter(runtime, make_client(sharded=False), fake.token)
    await adapter.start()
    user = user_payload(snowflake(), "Alice")
    try:
        await fake.send_message(author=user, content="the lighthouse?", channel_id=channel)
        stored = await _stored_reply(storage, AgentKey("discord", user["id"]))
        await fake.wait_until(lambda: _discord_shown(fake, channel) == _words(stored), 30)
    finally:
        await adapter.stop()


def _discord_shown(fake: FakeDiscord, channel: int) -> list[str]:
    return _words("\n".join(fake.reading(channel)))
