"""Files people send, through the runtime (the path every adapter shares), over real SQLite, a
scripted model and a scripted transcriber: photos, voice notes, documents, and the bad input
that must get one clear sentence, store the message and crash nothing."""

from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pypdf
import pytest
from PIL import Image

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMBadResponse, LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, call, last_user_text, reply
from agentcore.media import intake
from agentcore.media.documents import split_text
from agentcore.media.reader import FINISHED, PROGRESS
from agentcore.media.voice import TranscriptionUnavailable
from agentcore.messages import Role
from agentcore.records import DocState
from agentcore.runtime import AgentRuntime
from agentcore.settings import Vision
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundFile, InboundMessage, NoticeList, Reply
from bench.pdfgen import blank_pdf, make_pdf
from bots.compose import build_runtime, build_transcriber
from tests.conftest import make_settings

BRAD = AgentKey("console", "brad")
DESCRIPTION = "A brown dog catching a red frisbee on a beach."


def jpeg(width: int = 3000, height: int = 2000) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(out, "JPEG")
    return out.getvalue()


class Transcripts:
    """A scripted transcriber: the next answer, or an error to raise."""

    def __init__(self) -> None:
        self.next: str | Exception = "the plumber comes on Tuesday"
        self.calls: list[tuple[str, str, int]] = []

    async def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        self.calls.append((filename, mime_type, len(audio)))
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    async def close(self) -> None:
        pass


def model(request: LLMRequest) -> LLMResponse:
    """Describes images when asked to; otherwise answers with what it was told."""
    if request.messages[0].content == intake.DESCRIBE:
        return reply(DESCRIPTION)
    if request.messages[-1].role is Role.TOOL:
        return reply(f"found: {request.messages[-1].content}")
    text = last_user_text(request)
    if text.startswith("search "):
        return call("archival_memory_search", query=text.removeprefix("search "))
    return reply(f"echo: {text}")


@pytest.fixture
def llm() -> FunctionLLM:
    return FunctionLLM(model)


@pytest.fixture
def transcripts() -> Transcripts:
    return Transcripts()


@pytest.fixture
async def runtime(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock, transcripts: Transcripts
) -> AsyncIterator[AgentRuntime]:
    settings = make_settings(
        media={"max_file_bytes": 2 * 2**20, "progress_seconds": 0.0, "max_document_pages": 250}
    )
    runtime = build_runtime(settings, storage, llm, clock, transcripts)
    yield runtime
    await runtime.shutdown()


def sent(clock: ManualClock, text: str = "", *files: InboundFile) -> InboundMessage:
    return InboundMessage(BRAD, text, clock.now(), display_name="Brad", files=files)


async def stored_user_texts(storage: SQLiteStorage) -> list[str]:
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    rows = await storage.all_messages(agent.id)
    return [r.content or "" for r in rows if r.role is Role.USER]


# ---------------------------------------------------------------------- photos


async def test_a_photo_is_scaled_described_shown_and_found_later(
    runtime: AgentRuntime, storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    answer = await runtime.handle(
        sent(clock, "this is Rex!", InboundFile("a.jpg", "image/jpeg", jpeg()))
    )
    describe, turn = llm.requests
    assert describe.messages[-1].images and not describe.tools
    [shown] = [m for m in turn.messages if m.role is Role.USER]
    assert shown.images and shown.images[0].mime_type == "image/jpeg"
    with Image.open(io.BytesIO(shown.images[0].data)) as image:
        assert max(image.size) == 1568  # scaled down from 3000 px
    assert shown.content == f"[photo: {DESCRIPTION}]\nthis is Rex!"
    assert answer.text == f"echo: [photo: {DESCRIPTION}]\nthis is Rex!"
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    hits = await storage.search_messages(agent.id, "the photo of my dog")
    assert hits and DESCRIPTION in hits[0].content
    # Later turns see the description, not the image again.
    await runtime.handle(sent(clock, "what did I show you?"))
    assert not any(m.images for m in llm.requests[-1].messages)


async def test_without_vision_one_sentence_and_the_caption_is_answered(
    runtime: AgentRuntime, llm: FunctionLLM, clock: ManualClock, storage: SQLiteStorage
) -> None:
    def no_images(request: LLMRequest) -> LLMResponse:
        if any(m.images for m in request.messages):
            raise LLMBadResponse(
                "model endpoint refused the request 400: image input is not supported"
            )
        return model(request)

    llm._responder = no_images  # the endpoint turns out not to see
    photo = InboundFile("a.jpg", "image/jpeg", jpeg(200, 100))
    first = await runtime.handle(sent(clock, "look at my cat", photo))
    assert first.text.startswith(intake.NO_VISION)
    assert first.text.endswith("look at my cat")
    calls = len(llm.requests)
    second = await runtime.handle(sent(clock, "and this one", photo))
    assert intake.NO_VISION in second.text
    assert len(llm.requests) == calls + 1  # learned: no second attempt with the image
    assert not any(m.images for r in llm.requests[calls:] for m in r.messages)


async def test_a_photo_alone_that_cannot_be_seen_gets_only_the_notice(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    settings = make_settings(media={"vision": Vision.OFF})
    runtime = build_runtime(settings, storage, llm, clock)
    try:
        photo = InboundFile("a.png", "image/png", jpeg(50, 50))
        answer = await runtime.handle(sent(clock, "", photo))
        assert answer.text == intake.NO_VISION
        assert llm.requests == []
        stored = await stored_user_texts(storage)
    finally:
        await runtime.shutdown()
    assert stored == ["[photo: not seen, the model cannot see images]"]


# ---------------------------------------------------------------------- voice


async def test_a_voice_note_is_transcribed_and_stored_as_spoken(
    runtime: AgentRuntime, storage: SQLiteStorage, transcripts: Transcripts, clock: ManualClock
) -> None:
    note = InboundFile("voice.ogg", "audio/ogg", b"OggS fake opus", voice=True)
    answer = await runtime.handle(sent(clock, "", note))
    assert transcripts.calls == [("voice.ogg", "audio/ogg", 14)]
    heard = intake.HEARD.format(text="the plumber comes on Tuesday")
    assert answer.text.startswith(heard)
    assert await stored_user_texts(storage) == [
        "[voice note, transcribed] the plumber comes on Tuesday"
    ]


async def test_transcription_turned_off_never_sends_audio_anywhere(
    storage: SQLiteStorage,
    llm: FunctionLLM,
    transcripts: Transcripts,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(media={"transcription": False})
    assert build_transcriber(settings) is None  # the composition root builds no client
    runtime = build_runtime(settings, storage, llm, clock, transcripts)  # even if given one
    try:
        note = InboundFile("voice.ogg", "audio/ogg", b"OggS", voice=True)
        alone = await runtime.handle(sent(clock, "", note))
        captioned = await runtime.handle(sent(clock, "listen", note))
    finally:
        await runtime.shutdown()
    assert transcripts.calls == []
    assert alone.text == intake.NO_TRANSCRIPTION
    assert (
        captioned.text
        == f"{intake.NO_TRANSCRIPTION}\n\necho: [voice note: not transcribed]\nlisten"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_no_transcription_endpoint_one_notice_one_operator_line(
    runtime: AgentRuntime,
    storage: SQLiteStorage,
    transcripts: Transcripts,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transcripts.next = TranscriptionUnavailable("the transcription endpoint answered 404")
    note = InboundFile("voice.ogg", "audio/ogg", b"OggS", voice=True)
    first = await runtime.handle(sent(clock, "", note))
    second = await runtime.handle(sent(clock, "", note))
    assert first.text == second.text == intake.NO_TRANSCRIPTION
    assert len(transcripts.calls) == 1  # not asked again
    lines = [r for r in caplog.records if "cannot be transcribed" in r.getMessage()]
    assert len(lines) == 1
    assert await stored_user_texts(storage) == ["[voice note: not transcribed]"] * 2


# ---------------------------------------------------------------------- documents


async def test_a_pdf_is_read_into_archival_memory_and_paged_through_a_week_later(
    runtime: AgentRuntime, storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock
) -> None:
    data, facts = make_pdf(210)
    answer = await runtime.handle(
        sent(clock, "my parish records", InboundFile("records.pdf", "application/pdf", data))
    )
    assert "[document: records.pdf, 210 pages;" in answer.text
    await runtime._loop._media.reader.wait()  # type: ignore[union-attr]
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    [document] = await storage.list_files(agent.id)
    assert (document.state, document.pages, document.pages_read) == (DocState.READY, 210, 210)
    clock.advance(timedelta(days=7))
    fact = facts[199]
    found = await runtime.handle(sent(clock, f"search {fact.question}"))
    assert "[from records.pdf, page 200]" in found.text.splitlines()[1]
    assert fact.name in " ".join(found.text.split())
    page_two = await runtime.handle(sent(clock, "search page 200 records"))
    assert "records.pdf, page 200" in page_two.text


async def test_paging_goes_past_the_first_results(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    await runtime.handle(sent(clock, "hello"))
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    for i in range(25):
        await storage.add_passage(agent.id, f"note {i} about gardening", [], clock.now())
    first = await storage.search_passages(agent.id, "gardening", 10)
    second = await storage.search_passages(agent.id, "gardening", 10, 10)
    third = await storage.search_passages(agent.id, "gardening", 10, 20)
    ids = [p.id for p in first + second + third]
    assert len(ids) == len(set(ids)) == 25


async def test_documents_are_listed_deleted_exported_and_forgotten(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    text = "Grandma's recipe.\n\nUse three eggs and a cup of saffron milk."
    await runtime.handle(sent(clock, "", InboundFile("recipe.md", "text/markdown", text.encode())))
    await runtime._loop._media.reader.wait()  # type: ignore[union-attr]
    listed = await runtime.handle(sent(clock, "/documents"))
    assert "1. recipe.md — 1 part, read" in listed.text
    exported = await runtime.handle(sent(clock, "/export"))
    assert (
        b"saffron milk" in exported.attachments[0].data
        and b"recipe.md" in exported.attachments[0].data
    )
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    assert await storage.search_passages(agent.id, "saffron")
    deleted = await runtime.handle(sent(clock, "/documents delete 1"))
    assert "Deleted recipe.md" in deleted.text
    assert await storage.search_passages(agent.id, "saffron") == []
    assert await storage.list_files(agent.id) == []
    await runtime.handle(sent(clock, "", InboundFile("again.txt", "text/plain", b"saffron again")))
    await runtime.handle(sent(clock, "/forget"))
    await runtime.handle(sent(clock, "/forget confirm"))
    assert await storage.load_agent(BRAD) is None
    async with storage._db._reader.use() as conn:  # nothing of the file is left
        rows = await conn.execute_fetchall("SELECT COUNT(*) FROM files")
    assert [list(r) for r in rows] == [[0]]


def docx(*paragraphs: str) -> bytes:
    """A minimal Word document: its content types and a main part with ``paragraphs``."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "word/document.xml", f'<w:document xmlns:w="{w}"><w:body>{body}</w:body></w:document>'
        )
    return out.getvalue()


async def test_a_word_document_is_read_and_found(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    data = docx("Minutes of the garden club.", "The shed key is under the blue pot.")
    file = InboundFile(
        "minutes.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        data,
    )
    notices = NoticeList()
    await runtime.handle(sent(clock, "", file), notices)
    await runtime._loop._media.reader.wait()  # type: ignore[union-attr]
    assert notices.notices == [FINISHED.format(name="minutes.docx", total=1, unit="part")]
    found = await runtime.handle(sent(clock, "search where is the shed key"))
    assert "[from minutes.docx, part 1] Minutes of the garden club." in found.text
    assert "The shed key is under the blue pot." in found.text


async def test_a_pdf_encrypted_only_against_printing_is_read(
    runtime: AgentRuntime, storage: SQLiteStorage, clock: ManualClock
) -> None:
    """An empty user password (AES, as most PDF writers do today) restricts printing or
    copying, not reading."""
    pdf = InboundFile("rules.pdf", "application/pdf", encrypted_pdf(""))
    answer = await runtime.handle(sent(clock, "", pdf))
    assert "[document: rules.pdf, 2 pages;" in answer.text
    await runtime._loop._media.reader.wait()  # type: ignore[union-attr]
    agent = await storage.load_agent(BRAD)
    assert agent is not None
    [document] = await storage.list_files(agent.id)
    assert (document.state, document.pages_read) == (DocState.READY, 2)


_READ_10, _READ_20, _READ_ALL = (
    PROGRESS.format(done=10, total=25, unit="page", name="a.pdf"),
    PROGRESS.format(done=20, total=25, unit="page", name="a.pdf"),
    FINISHED.format(name="a.pdf", total=25, unit="page"),
)


@pytest.mark.parametrize(
    ("progress_seconds", "told"),
    [(0.0, [_READ_10, _READ_20, _READ_ALL]), (10.0, [_READ_ALL])],
)
async def test_a_long_document_says_how_far_it_has_read(
    storage: SQLiteStorage,
    llm: FunctionLLM,
    clock: ManualClock,
    transcripts: Transcripts,
    progress_seconds: float,
    told: list[str],
) -> None:
    """Progress comes per batch of pages while reading, at most once per progress_seconds (the
    injected clock does not move here, so with 10 seconds only the end is told)."""
    settings = make_settings(media={"progress_seconds": progress_seconds})
    runtime = build_runtime(settings, storage, llm, clock, transcripts)
    notices = NoticeList()
    pdf = InboundFile("a.pdf", "application/pdf", make_pdf(25)[0])
    await runtime.handle(sent(clock, "", pdf), notices)
    await runtime._loop._media.reader.wait()  # type: ignore[union-attr]
    await runtime.shutdown()
    assert notices.notices == told


# ---------------------------------------------------------------------- bad input


def zip_bomb() -> bytes:
    """A DOCX whose document.xml unpacks from ~100 KB to 100 MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"0" * 2**20
            for _ in range(100):
                member.write(chunk)
    return out.getvalue()


def encrypted_pdf(password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(2)[0])))
    writer.encrypt(password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG that claim ``width``×``height`` pixels (a decompression bomb's
    header: a real one would unpack to gigabytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


BAD_INPUT = [
    (
        InboundFile("huge.pdf", "application/pdf", b"", size=30 * 2**20),
        "huge.pdf is 30.0 MB; I can take files of up to 2.0 MB.",
    ),
    (
        InboundFile("photos.zip", "application/zip", b"PK\x03\x04"),
        intake.UNSUPPORTED.format(name="photos.zip"),
    ),
    (
        InboundFile(
            "bomb.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            zip_bomb(),
        ),
        "bomb.docx unpacks to far more text than I can read.",
    ),
    (InboundFile("scan.pdf", "application/pdf", blank_pdf()), "scan.pdf has no text I can read"),
    (
        InboundFile("broken.pdf", "application/pdf", b"%PDF-1.4 garbage"),
        "broken.pdf seems to be damaged",
    ),
    (
        InboundFile("locked.pdf", "application/pdf", encrypted_pdf("secret")),
        "locked.pdf is protected with a password, so I can't read it",
    ),
    (  # an encryption scheme pypdf does not read
        InboundFile("cipher.pdf", "application/pdf", encrypted_pdf("").replace(b"/V 5", b"/V 9")),
        "cipher.pdf is protected with a password, so I can't read it",
    ),
    (  # every page's text in a stream filter pypdf does not decode
        InboundFile(
            "odd.pdf",
            "application/pdf",
            make_pdf(2)[0].replace(b"/FlateDecode", b"/FlateDecodX"),
        ),
        "odd.pdf has no text I can read",
    ),
    (
        InboundFile("long.pdf", "application/pdf", make_pdf(251)[0]),
        "long.pdf has 251 pages; I can read documents of up to 250.",
    ),
    (InboundFile("broken.jpg", "image/jpeg", b"\xff\xd8 not a jpeg"), "I couldn't open that image"),
    (
        InboundFile("huge.png", "image/png", png_header(7000, 7000)),  # 49 MP
        "That image is 7000×7000 pixels, more than I can take",
    ),
    (
        InboundFile("bomb.png", "image/png", png_header(30_000, 30_000)),  # 900 MP
        "That image has more pixels than I can take; please send a smaller one.",
    ),
    (InboundFile("silence.ogg", "audio/ogg", b"OggS", voice=True), intake.NO_SPEECH),
]


@pytest.mark.parametrize(("file", "sentence"), BAD_INPUT, ids=[f.filename for f, _ in BAD_INPUT])
async def test_bad_input_gets_one_clear_sentence_and_the_message_is_stored(
    runtime: AgentRuntime,
    storage: SQLiteStorage,
    transcripts: Transcripts,
    clock: ManualClock,
    file: InboundFile,
    sentence: str,
) -> None:
    transcripts.next = ""
    answer = await runtime.handle(sent(clock, "", file))
    assert sentence in answer.text
    assert "\n" not in answer.text  # one notice, no model answer to nothing
    [stored] = await stored_user_texts(storage)
    assert stored.startswith("[")
    captioned = await runtime.handle(sent(clock, "and the caption?", file))
    assert captioned.text.endswith("and the caption?")  # the caption is still answered


def test_split_text_keeps_every_word_within_the_limit() -> None:
    text = ("word " * 700 + "\n\n" + "A sentence. " * 300).strip()
    pieces = split_text(text, 500)
    assert all(len(p) <= 500 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


async def test_files_survive_a_restart_before_their_turn(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock, transcripts: Transcripts
) -> None:
    first = build_runtime(make_settings(), storage, llm, clock, transcripts)
    ticket = await first.accept(
        sent(clock, "", InboundFile("v.ogg", "audio/ogg", b"OggS", voice=True))
    )
    assert ticket.pending_id is not None  # stored; the bot stops before answering
    second = build_runtime(make_settings(), storage, llm, clock, transcripts)
    [waiting] = await second.recover("console")
    answer: Reply = await second.answer(waiting)
    assert "the plumber comes on Tuesday" in answer.text
    await second.shutdown()
