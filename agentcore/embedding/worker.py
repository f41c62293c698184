"""The background embedding worker: every searchable message and passage gets its vector,
never on a turn's path.

It walks the rows without a vector of the configured model in id order, a batch per request:
at start that is the backfill of an existing database (with progress in the log and in
``/admin stats``), afterwards each new row within ``poll_seconds``. A failed request (the
endpoint down, an error status, a timeout, the wrong number of vectors) is retried with the
same rows after a doubling wait; an unusable vector (the wrong dimension, NaN, zeros) is logged
and its row retried later on its own. Rows without a vector are searched by their words only,
so nothing waits for this and nothing is lost when it fails.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentcore.clock import Clock
from agentcore.embedding.base import Embedder, EmbeddingError
from agentcore.embedding.queries import QueryVectors
from agentcore.records import EmbeddingModel, NewVector, Unembedded, VectorKind
from agentcore.settings import EmbeddingSettings
from agentcore.storage.protocols import StorageError, VectorStore

log = logging.getLogger(__name__)

MAX_RETRIED_ROWS = 10_000  # rows with unusable vectors remembered for a retry; more wait a restart


@dataclass
class _Backfill:
    """What was missing at start, and how far the worker has come."""

    missing: int
    started: datetime
    done: int = 0
    reported: datetime | None = None


@dataclass
class _Retry:
    row: Unembedded
    kind: VectorKind
    due: datetime


@dataclass
class _Walk:
    """Where the worker is: past which id of each kind, and the rows to try again."""

    after: dict[VectorKind, int] = field(default_factory=lambda: dict.fromkeys(VectorKind, 0))
    retries: dict[tuple[VectorKind, int], _Retry] = field(default_factory=dict)


class EmbeddingWorker:
    def __init__(
        self,
        *,
        storage: VectorStore,
        embedder: Embedder,
        clock: Clock,
        settings: EmbeddingSettings,
        model: EmbeddingModel,
        queries: QueryVectors | None = None,
    ) -> None:
        """``queries``: told the model's dimension once the first vectors arrive."""
        self._storage = storage
        self._embedder = embedder
        self._clock = clock
        self._settings = settings
        self._model = model
        self._queries = queries
        self._walk = _Walk()
        self._failures = 0  # failed requests in a row
        self._resume_at: datetime | None = None
        self._backfill: _Backfill | None = None
        self.stored = 0  # vectors stored since start

    async def start(self) -> None:
        """Count what is missing and say so: the backfill the worker is about to do."""
        progress = [
            p for p in await self._storage.embedding_progress() if p.model == self._model.name
        ]
        missing = sum(
            (p.messages - p.messages_embedded) + (p.passages - p.passages_embedded)
            for p in progress
        )
        if missing:
            self._backfill = _Backfill(missing, self._clock.now())
            log.info(
                "embeddings: %d messages and passages to embed with %s in the background",
                missing,
                self._model.name,
            )

    async def run(self) -> None:
        """Embed for as long as the bot runs."""
        await self.start()
        while True:
            try:
                stored = await self.step()
            except StorageError as exc:
                log.warning("embeddings: the database failed (%s); trying again later", exc)
                stored = 0
            if not stored:
                await asyncio.sleep(self._pause())

    def _pause(self) -> float:
        """Until the endpoint's retry time while it is ahead; else the polling interval (a
        retry time passed with nothing to embed, or a failed database, is no reason to ask
        the database again at once)."""
        if self._resume_at is not None:
            left = (self._resume_at - self._clock.now()).total_seconds()
            if left > 0:
                return left
        return self._settings.poll_seconds

    async def step(self) -> int:
        """One request: the next rows without vectors (due retries first); how many vectors
        were stored (0: nothing to do now, or the request failed)."""
        now = self._clock.now()
        if self._resume_at is not None and now < self._resume_at:
            return 0
        kind, rows = await self._next_rows(now)
        if not rows:
            return 0
        try:
            answer = await self._embedder.embed([r.text for r in rows], query=False)
        except EmbeddingError as exc:
            self._failed(exc, now)
            return 0
        self._recovered()
        stored = await self._store(kind, rows, answer, now)
        self._walk.after[kind] = max(self._walk.after[kind], rows[-1].id)
        self._progress(len(rows), now)
        return stored

    async def _next_rows(self, now: datetime) -> tuple[VectorKind, list[Unembedded]]:
        due = [r for r in self._walk.retries.values() if r.due <= now]
        if due:
            kind = due[0].kind
            return kind, [r.row for r in due if r.kind == kind][: self._settings.batch_size]
        for kind in VectorKind:
            rows = await self._storage.unembedded(
                kind, self._model.id, self._walk.after[kind], self._settings.batch_size
            )
            if rows:
                return kind, rows
        return VectorKind.MESSAGE, []

    async def _store(
        self, kind: VectorKind, rows: list[Unembedded], answer: list[list[float]], now: datetime
    ) -> int:
        from agentcore.search.vectors import checked, quantize  # noqa: PLC0415 (numpy)

        vectors = []
        for row, values in zip(rows, answer, strict=True):
            vector, problem = checked(values, self._model.dims)
            if vector is not None and self._model.dims is None:
                await self._learn_dims(len(vector))
                vector, problem = checked(values, self._model.dims)
            if vector is None:
                self._retry_later(kind, row, problem, now)
                continue
            self._walk.retries.pop((kind, row.id), None)
            vectors.append(NewVector(row.id, row.agent_id, quantize(vector)))
        stored = await self._storage.store_vectors(kind, self._model.id, vectors)
        self.stored += stored
        return stored

    async def _learn_dims(self, dims: int) -> None:
        recorded = await self._storage.set_embedding_dims(self._model.id, dims)
        self._model = EmbeddingModel(self._model.id, self._model.name, recorded)
        if self._queries is not None:
            self._queries.knows_dims(self._model)

    def _retry_later(self, kind: VectorKind, row: Unembedded, problem: str, now: datetime) -> None:
        log.warning(
            "embeddings: unusable vector for %s %d (%s); it is searched by its words until "
            "a retry in %.0fs succeeds",
            kind.value,
            row.id,
            problem,
            self._settings.max_retry_seconds,
        )
        if len(self._walk.retries) < MAX_RETRIED_ROWS or (kind, row.id) in self._walk.retries:
            due = now + timedelta(seconds=self._settings.max_retry_seconds)
            self._walk.retries[(kind, row.id)] = _Retry(row, kind, due)

    def _failed(self, exc: EmbeddingError, now: datetime) -> None:
        wait = min(
            self._settings.retry_seconds * 2**self._failures, self._settings.max_retry_seconds
        )
        self._failures += 1
        self._resume_at = now + timedelta(seconds=wait)
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        log.log(
            level,
            "embeddings: the endpoint failed (%s); retrying in %.0fs, searching new rows by "
            "their words meanwhile",
            exc,
            wait,
        )

    def _recovered(self) -> None:
        if self._failures:
            log.info("embeddings: the endpoint works again after %d failed tries", self._failures)
        self._failures = 0
        self._resume_at = None

    def _progress(self, done: int, now: datetime) -> None:
        backfill = self._backfill
        if backfill is None:
            return
        backfill.done += done
        seconds = max((now - backfill.started).total_seconds(), 1e-3)
        if backfill.done >= backfill.missing:
            log.info(
                "embeddings: backfill done, %d rows in %.0fs (%.0f/s)",
                backfill.done,
                seconds,
                backfill.done / seconds,
            )
            self._backfill = None
            return
        every = timedelta(seconds=self._settings.progress_seconds)
        if backfill.reported is None or now - backfill.reported >= every:
            backfill.reported = now
            log.info(
                "embeddings: backfill %d of %d (%.1f%%), %.0f/s",
                backfill.done,
                backfill.missing,
                100 * backfill.done / backfill.missing,
                backfill.done / seconds,
            )
