"""Reading documents into archival memory in the background, with progress for the person.

A document is read in batches of pages; each batch's passages and the count of pages read are
stored in one transaction, so a reading cut short (a restart, a crash) goes on where it stopped
the next time that person writes, and no page is filed twice. Text extraction runs in a thread
(pypdf is pure Python), at most ``concurrency`` documents at once, so turns keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from agentcore.clock import Clock
from agentcore.media.documents import Document, DocumentRefused, open_document, page_passages
from agentcore.records import DocState, DocumentPassage, StoredFile
from agentcore.settings import MediaSettings
from agentcore.storage.protocols import FileStore, StorageError
from agentcore.types import ReplySink

log = logging.getLogger(__name__)

BATCH_PAGES = 10

PROGRESS = "Read {done} of {total} {unit}s of {name} so far."
FINISHED = (
    "I've finished reading {name}: all {total} {unit}s are in my memory now, so ask me "
    "anything about it."
)
NO_TEXT = "I found no text in {name}, so there is nothing of it in my memory."
STOPPED = (
    "I couldn't finish reading {name}; the first {done} {unit}s are in my memory. Sending it "
    "again may help."
)


@dataclass(frozen=True, slots=True)
class _Job:
    agent_id: int
    file: StoredFile
    sink: ReplySink


class DocumentReader:
    def __init__(
        self, storage: FileStore, clock: Clock, settings: MediaSettings, concurrency: int = 2
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[int, asyncio.Task[None]] = {}  # file id → its reading

    @property
    def running(self) -> int:
        return len(self._running)

    def read(self, agent_id: int, file: StoredFile, sink: ReplySink) -> None:
        """Start reading ``file`` (a document in state READING) unless it is being read."""
        if file.id in self._running:
            return
        task = asyncio.create_task(self._guarded(_Job(agent_id, file, sink)))
        self._running[file.id] = task
        task.add_done_callback(lambda _: self._running.pop(file.id, None))

    async def wait(self) -> None:
        """Until every reading started so far has ended (tests, benchmarks)."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    async def close(self, grace: float = 0.0) -> None:
        """Let readings finish for up to ``grace`` seconds, then stop them; what was read
        stays, the rest is read after the next start."""
        tasks = list(self._running.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _guarded(self, job: _Job) -> None:
        async with self._slots:
            try:
                await self._read(job)
            except StorageError as exc:  # left in state READING: the next turn resumes it
                log.warning("reading document %d stopped: %s", job.file.id, exc)
            except Exception:
                log.exception("reading document %d failed", job.file.id)
                await self._finish(job, DocState.FAILED, "stopped", STOPPED, job.file.pages_read)

    async def _read(self, job: _Job) -> None:
        file = job.file
        data = await self._storage.file_data(job.agent_id, file.id)
        if data is None:
            return  # deleted meanwhile
        try:
            document = await asyncio.to_thread(
                open_document,
                data,
                file.filename,
                file.mime_type,
                self._settings.max_document_pages,
            )
        except DocumentRefused as exc:
            await self._finish(job, DocState.FAILED, str(exc), str(exc), 0)
            return
        done = await self._pages(job, document)
        if done is None:
            return
        if not done:
            await self._finish(job, DocState.FAILED, "no text", NO_TEXT, 0, document)
        else:
            await self._finish(job, DocState.READY, "", FINISHED, document.page_count, document)

    async def _pages(self, job: _Job, document: Document) -> int | None:
        """Read and file the pages not read yet; how many passages the document has in all
        that this reading filed (None if the document was deleted meanwhile)."""
        total = document.page_count
        last_said = self._clock.now()
        filed = 0
        for start in range(job.file.pages_read, total, BATCH_PAGES):
            end = min(start + BATCH_PAGES, total)
            texts = await asyncio.to_thread(document.pages, start, end)
            now = self._clock.now()
            passages = [
                DocumentPassage(p.content, p.page, now)
                for p in page_passages(texts, start + 1, self._settings.passage_chars)
            ]
            if not await self._storage.add_document_passages(
                job.agent_id, job.file.id, passages, end
            ):
                return None
            filed += len(passages)
            if end < total and (now - last_said).total_seconds() >= self._settings.progress_seconds:
                last_said = now
                await job.sink.notice(
                    PROGRESS.format(
                        done=end, total=total, unit=document.unit, name=job.file.filename
                    )
                )
        return filed or job.file.pages_read

    async def _finish(
        self,
        job: _Job,
        state: DocState,
        note: str,
        message: str,
        done: int,
        document: Document | None = None,
    ) -> None:
        await self._storage.finish_document(job.agent_id, job.file.id, state, note)
        unit = document.unit if document is not None else "page"
        total = document.page_count if document is not None else job.file.pages
        log.info("document %d of agent %d: %s", job.file.id, job.agent_id, state.value)
        await job.sink.notice(
            message.format(name=job.file.filename, total=total, unit=unit, done=done)
        )
