"""What a turn makes of the files that came with its messages, before the model answers.

Before the turn takes its messages into recall, each waiting file is prepared once: a photo is
scaled and described by the model (so ``conversation_search`` finds "the photo of my dog"), a
voice note transcribed, a document checked and its reading into archival memory scheduled.
The waiting message's text becomes what the files turned out to be (``[photo: …]``,
``[voice note] …``, ``[document: …]``) followed by its caption, and that is what recall keeps.
Anything the person should know (the model cannot see, no transcription here, a broken PDF)
is one short notice through the turn's ``ReplySink``; the caption is still answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from agentcore.clock import Clock
from agentcore.llm.base import LLMBadResponse, LLMClient, LLMError, LLMRequest
from agentcore.media.documents import DocumentRefused, open_document
from agentcore.media.images import ImageRefused, fit_image
from agentcore.media.reader import DocumentReader
from agentcore.media.voice import Transcriber, TranscriptionUnavailable
from agentcore.messages import ImagePart, PromptMessage, Role
from agentcore.records import AgentRecord, DocState, FileUpdate, PendingFile, Purpose, StoredFile
from agentcore.settings import MediaSettings, Vision
from agentcore.storage.protocols import FileStore
from agentcore.types import AgentKey, FileKind, ReplySink, clean_text
from agentcore.usage.meter import Meter, OverBudget

log = logging.getLogger(__name__)

DESCRIBE = (
    "Describe this image in one or two short sentences, for your own memory: what it shows, "
    "and any text in it. Plain text, no preamble."
)
NO_VISION = (
    "I can't see images with the model I'm using, so I only read the text that came with it."
)
NOT_DESCRIBED = "I couldn't look at that photo just now, but I've kept it."
TOO_LARGE = "{name} is {size}; I can take files of up to {limit}."
NOT_FETCHED = "I couldn't download {name}; please send it again."
UNSUPPORTED = (
    "I can't read {name}: I read photos, voice notes, audio, PDFs, Word documents and text files."
)
NO_SPEECH = "I couldn't make out any words in that voice note."
NO_TRANSCRIPTION = (
    "I can't listen to voice notes here (my operator hasn't set up transcription), so please "
    "type it instead."
)
TRANSCRIPTION_FAILED = (
    "I couldn't transcribe that voice note just now; please try again or type it."
)
HEARD = "I heard: “{text}”"
_HEARD_CHARS = 300
_DESCRIPTION_CHARS = 500
_MAX_CHECKED = 100_000
CLOSE_GRACE = 5.0  # seconds documents being read get to finish at shutdown


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the waiting messages' files came to."""

    messages: int = 0  # waiting messages that had files
    answerable: bool = True  # False: none of them has a caption or a usable file
    documents: bool = False  # a document is to be read


@dataclass
class _Outcome:
    marker: str  # the line the file becomes in the message text
    update: FileUpdate
    usable: bool  # the model gets something from it
    notices: list[str] = field(default_factory=list)


class IntakeStorage(FileStore, Protocol):
    async def load_agent(self, key: AgentKey) -> AgentRecord | None: ...


class MediaIntake:
    def __init__(
        self,
        *,
        storage: IntakeStorage,
        meter: Meter,
        transcriber: Transcriber | None,
        clock: Clock,
        settings: MediaSettings,
    ) -> None:
        self._storage = storage
        self._meter = meter  # photos are described for the person who sent them
        self._transcriber = transcriber if settings.transcription else None
        self._settings = settings
        self._sees = settings.vision is not Vision.OFF  # learned in AUTO from a refusal
        self._no_transcription = False  # the endpoint said it has none
        self._checked: set[int] = set()  # agents whose unfinished readings were looked for
        self.reader = DocumentReader(storage, clock, settings)

    # ------------------------------------------------------------------ before the turn

    async def prepare(
        self, store: FileStore, key: AgentKey, up_to_id: int, sink: ReplySink
    ) -> Prepared:
        """Prepare this person's waiting files (messages up to ``up_to_id``), through
        ``store``: their turn's (see ``Storage.person``)."""
        pending = await store.pending_files(key, up_to_id)
        if not pending:
            return Prepared()
        by_message: dict[int, list[PendingFile]] = {}
        for item in pending:
            by_message.setdefault(item.pending_id, []).append(item)
        agent = await self._storage.load_agent(key)  # None: their first message
        model = self._meter.serving(key, agent.id if agent else None, Purpose.IMAGE)
        answerable = documents = False
        notices: list[str] = []
        for pending_id, items in by_message.items():
            caption = items[0].caption
            outcomes = [await self._prepare(item.file, caption, model) for item in items]
            text = "\n".join([*(o.marker for o in outcomes), caption]).strip()
            await store.prepare_pending(pending_id, text, [o.update for o in outcomes])
            answerable |= bool(caption.strip()) or any(o.usable for o in outcomes)
            documents |= any(o.update.state is DocState.READING for o in outcomes)
            notices += [n for o in outcomes for n in o.notices]
        for notice in dict.fromkeys(notices):  # each said once
            await sink.notice(notice)
        return Prepared(len(by_message), answerable, documents)

    async def _prepare(self, file: StoredFile, caption: str, model: LLMClient) -> _Outcome:
        if not file.data or len(file.data) > self._settings.max_file_bytes:
            return self._not_fetched(file)
        if file.kind is FileKind.IMAGE:
            return await self._image(file, caption, model)
        if file.kind in {FileKind.VOICE, FileKind.AUDIO}:
            return await self._audio(file)
        if file.kind is FileKind.DOCUMENT:
            return await self._document(file)
        notice = UNSUPPORTED.format(name=file.filename)
        return _refused(file, f"[file {file.filename}: a kind of file I can't read]", notice)

    def _not_fetched(self, file: StoredFile) -> _Outcome:
        limit = self._settings.max_file_bytes
        if file.size <= limit:  # the adapter could not download it
            notice = NOT_FETCHED.format(name=file.filename)
            return _refused(file, f"[file {file.filename}: could not be fetched]", notice)
        notice = TOO_LARGE.format(name=file.filename, size=_size(file.size), limit=_size(limit))
        outcome = _refused(file, f"[file {file.filename}: too large, not read]", notice)
        outcome.update = replace(outcome.update, data=b"")
        return outcome

    async def _image(self, file: StoredFile, caption: str, model: LLMClient) -> _Outcome:
        settings = self._settings
        try:
            fitted = await asyncio.to_thread(
                fit_image, file.data, settings.image_max_side, settings.image_max_pixels
            )
        except ImageRefused as exc:  # nothing worth keeping: its bytes go
            return _Outcome(
                "[photo: could not be opened]",
                FileUpdate(file.id, str(exc), b""),
                False,
                [str(exc)],
            )
        image = ImagePart(fitted.mime_type, fitted.data)
        description = await self._describe(image, caption, model) if self._sees else None
        keep = FileUpdate(file.id, description or "", fitted.data, mime_type=fitted.mime_type)
        if description:
            return _Outcome(f"[photo: {description}]", keep, True)
        if not self._sees:
            return _Outcome(
                "[photo: not seen, the model cannot see images]", keep, False, [NO_VISION]
            )
        return _Outcome("[photo]", keep, True, [NOT_DESCRIBED])

    async def _describe(self, image: ImagePart, caption: str, model: LLMClient) -> str | None:
        """A short description by the model; None if it could not give one (and, in AUTO,
        vision is off from now on if the endpoint refused the image)."""
        request = LLMRequest(
            messages=(
                PromptMessage(Role.SYSTEM, DESCRIBE),
                PromptMessage(Role.USER, caption or "(no caption)", images=(image,)),
            )
        )
        try:
            response = await model.complete(request)
        except LLMBadResponse as exc:
            if self._settings.vision is Vision.AUTO:
                self._sees = False
                log.warning(
                    "the model endpoint refused an image, so images are not sent to it from "
                    'now on (set media.vision = "on" or "off" to decide yourself): %s',
                    exc,
                )
            else:
                log.warning("the model endpoint refused an image: %s", exc)
            return None
        except LLMError as exc:
            log.warning("describing an image failed: %s: %s", type(exc).__name__, exc)
            return None
        except OverBudget:  # the photo is kept; the turn then tells them about the budget
            return None
        text = " ".join(clean_text(response.content or "").split())
        return text[:_DESCRIPTION_CHARS] or None

    async def _audio(self, file: StoredFile) -> _Outcome:
        spoken = "voice note" if file.kind is FileKind.VOICE else f"audio {file.filename}"
        if self._transcriber is None or self._no_transcription:
            return _refused(file, f"[{spoken}: not transcribed]", NO_TRANSCRIPTION)
        try:
            text = clean_text(
                await self._transcriber.transcribe(file.data, file.filename, file.mime_type)
            ).strip()
        except TranscriptionUnavailable as exc:
            self._no_transcription = True
            log.error(
                "voice notes cannot be transcribed: %s. Set [media] transcription_base_url "
                "(and transcription_model) to a server with /v1/audio/transcriptions, or "
                "transcription = false",
                exc,
            )
            return _refused(file, f"[{spoken}: not transcribed]", NO_TRANSCRIPTION)
        except LLMError as exc:
            log.warning("transcribing a voice note failed: %s: %s", type(exc).__name__, exc)
            return _refused(file, f"[{spoken}: not transcribed]", TRANSCRIPTION_FAILED)
        if not text:
            return _refused(file, f"[{spoken}: no words could be made out]", NO_SPEECH)
        heard = text if len(text) <= _HEARD_CHARS else text[:_HEARD_CHARS] + "…"
        return _Outcome(
            f"[{spoken}, transcribed] {text}",
            FileUpdate(file.id, text),
            True,
            [HEARD.format(text=heard)],
        )

    async def _document(self, file: StoredFile) -> _Outcome:
        try:
            document = await asyncio.to_thread(
                open_document,
                file.data,
                file.filename,
                file.mime_type,
                self._settings.max_document_pages,
            )
        except DocumentRefused as exc:
            update = FileUpdate(file.id, str(exc), None, DocState.FAILED)
            return _Outcome(f"[document {file.filename}: not read]", update, False, [str(exc)])
        count = f"{document.page_count} {document.unit}{'s' if document.page_count != 1 else ''}"
        marker = (
            f"[document: {file.filename}, {count}; being read into your archival memory, "
            "where archival_memory_search finds its passages by page]"
        )
        update = FileUpdate(file.id, "", None, DocState.READING, document.page_count)
        return _Outcome(marker, update, True)

    # ------------------------------------------------------------------ during the turn

    async def images(
        self, store: FileStore, agent_id: int, message_ids: Sequence[int]
    ) -> dict[int, tuple[ImagePart, ...]]:
        """The photos that came with these messages, by message id, for a model that sees."""
        if not self._sees:
            return {}
        found: dict[int, tuple[ImagePart, ...]] = {}
        for file in await store.message_files(agent_id, message_ids, FileKind.IMAGE):
            if file.data and file.message_id is not None:
                image = ImagePart(file.mime_type, file.data)
                found[file.message_id] = (*found.get(file.message_id, ()), image)
        return found

    async def read_documents(self, agent_id: int, sink: ReplySink, *, new: bool) -> None:
        """Start reading this agent's documents that are waiting to be read: those of this
        turn (``new``), and, the first time the agent is seen, any cut short by a restart."""
        if not new and agent_id in self._checked:
            return
        if len(self._checked) >= _MAX_CHECKED:
            self._checked.clear()  # looking again costs one query, no more
        self._checked.add(agent_id)
        for file in await self._storage.list_files(agent_id, DocState.READING):
            self.reader.read(agent_id, file, sink)

    async def close(self) -> None:
        await self.reader.close(CLOSE_GRACE)
        if self._transcriber is not None:
            await self._transcriber.close()


def _refused(file: StoredFile, marker: str, notice: str) -> _Outcome:
    """A file the model gets nothing from; its bytes are kept unless it was never fetched."""
    state = DocState.FAILED if file.kind is FileKind.DOCUMENT else DocState.NONE
    return _Outcome(marker, FileUpdate(file.id, notice, None, state), False, [notice])


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{max(1, size // 1024)} KB"
