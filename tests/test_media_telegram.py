"""Files end to end, as people send them on Telegram: the real python-telegram-bot client
against the fake Bot API (getFile, downloads), the real ``openai`` SDK against the fake OpenAI
server (image parts, /v1/audio/transcriptions), real SQLite."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.llm.transcribe import OpenAITranscriber
from agentcore.media import intake
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey
from bench.pdfgen import make_pdf
from bots.compose import build_runtime
from bots.telegram import TelegramAdapter, build_application
from tests.conftest import make_settings
from tests.fakes.openai_server import Completion, FakeOpenAI, images_in, last_user, system
from tests.fakes.telegram_server import FakeTelegram, User
from tests.test_media import DESCRIPTION, jpeg

ALICE = User(1001, "Alice", "alice_w")
SPOKEN = "remind me that the plumber comes on Tuesday"


def respond(body: dict[str, Any]) -> Completion:
    """Describes photos; answers the question about page 200 by searching archival memory;
    echoes everything else."""
    messages = body["messages"]
    if system(body) == intake.DESCRIBE:
        return Completion(DESCRIPTION)
    if messages[-1]["role"] == "tool":
        return Completion("From your records: " + messages[-1]["content"].splitlines()[1])
    text = last_user(body)
    if text.startswith("Who is"):
        return Completion(tool_calls=[("archival_memory_search", {"query": text, "limit": 5})])
    return Completion(f"echo: {text}")


def transcribe(audio: bytes, model: str) -> str:
    return SPOKEN if audio.startswith(b"OggS") and model == "whisper-1" else ""


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(respond, transcribe=transcribe) as server:
        yield server


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def runtime(
    storage: SQLiteStorage, clock: ManualClock, openai: FakeOpenAI
) -> AsyncIterator[AgentRuntime]:
    llm = OpenAICompatibleLLM(model="fake-model", base_url=openai.base_url, api_key="k")
    transcriber = OpenAITranscriber(model="whisper-1", base_url=openai.base_url, api_key="k")
    runtime = build_runtime(make_settings(), storage, llm, clock, transcriber)
    yield runtime
    await runtime.shutdown()


@pytest.fixture
async def bot(fake: FakeTelegram, runtime: AgentRuntime) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime)
    await adapter.start()
    yield adapter
    await adapter.stop()


async def test_a_photo_with_a_caption(
    fake: FakeTelegram, bot: TelegramAdapter, openai: FakeOpenAI, storage: SQLiteStorage
) -> None:
    photo = jpeg(1200, 900)
    fake.private(ALICE, photo=fake.photo(photo, 1200, 900), caption="this is Rex!")
    await fake.wait_for_messages(ALICE.id, 1)
    [answer] = fake.texts(ALICE.id)
    assert answer == f"echo: [photo: {DESCRIPTION}]\nthis is Rex!"
    assert fake.downloads == ["file1"]  # the full size, not the thumbnail
    describe, turn = openai.requests
    [shown] = images_in(turn)
    assert images_in(describe) == [shown] and shown.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(shown.partition(",")[2])[:2] == b"\xff\xd8"
    agent = await storage.load_agent(AgentKey("telegram", str(ALICE.id)))
    assert agent is not None
    [hit] = await storage.search_messages(agent.id, "photo of my dog", limit=1)
    assert DESCRIPTION in hit.content


async def test_a_voice_note(
    fake: FakeTelegram, bot: TelegramAdapter, openai: FakeOpenAI, storage: SQLiteStorage
) -> None:
    fake.private(ALICE, voice=fake.voice(b"OggS" + bytes(2000)))
    await fake.wait_for_messages(ALICE.id, 2)
    heard, answer = fake.texts(ALICE.id)
    assert heard == intake.HEARD.format(text=SPOKEN)
    assert answer == f"echo: [voice note, transcribed] {SPOKEN}"
    [form] = openai.transcriptions
    assert form["model"] == "whisper-1" and form["file"].startswith(b"OggS")


async def test_no_transcription_endpoint_tells_the_person_once_per_note(
    fake: FakeTelegram, storage: SQLiteStorage, clock: ManualClock, openai: FakeOpenAI
) -> None:
    async with FakeOpenAI(respond) as bare:  # serves chat completions only
        llm = OpenAICompatibleLLM(model="m", base_url=bare.base_url, api_key="k")
        transcriber = OpenAITranscriber(model="whisper-1", base_url=bare.base_url, api_key="k")
        runtime = build_runtime(make_settings(), storage, llm, clock, transcriber)
        adapter = TelegramAdapter(build_application(fake.token, fake.root), runtime)
        await adapter.start()
        try:
            fake.private(ALICE, voice=fake.voice(b"OggS"), caption="listen")
            await fake.wait_for_messages(ALICE.id, 2)
        finally:
            await adapter.stop()
            await runtime.shutdown()
    notice, answer = fake.texts(ALICE.id)
    assert notice == intake.NO_TRANSCRIPTION
    assert answer == "echo: [voice note: not transcribed]\nlisten"


async def test_a_pdf_then_a_question_about_page_200_a_week_later(
    fake: FakeTelegram, bot: TelegramAdapter, clock: ManualClock, openai: FakeOpenAI
) -> None:
    data, facts = make_pdf(300)
    document = fake.document(data, "parish.pdf", "application/pdf")
    fake.private(ALICE, document=document, caption="my parish records")
    finished = "I've finished reading parish.pdf: all 300 pages are in my memory now"
    await fake.wait_until(lambda: any(finished in t for t in fake.texts(ALICE.id)), within=60)
    assert "[document: parish.pdf, 300 pages;" in fake.texts(ALICE.id)[0]
    clock.advance(timedelta(days=7))
    fact = facts[199]
    fake.private(ALICE, fact.question)
    await fake.wait_until(lambda: fake.texts(ALICE.id)[-1].startswith("From your records"))
    answer = fake.texts(ALICE.id)[-1]
    assert "[from parish.pdf, page 200]" in answer
