"""The embedding endpoint seam: texts in, one vector each out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol


class EmbeddingError(Exception):
    """The endpoint gave no usable answer (down, an error status, a timeout, the wrong number of
    vectors). The message is one line for the operator's log, without keys."""


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        """One vector per text, in order. ``query``: the texts are search queries (models
        such as E5 embed queries and documents differently). Raises ``EmbeddingError``."""
        ...

    async def close(self) -> None: ...


class LazyEmbedder:
    """An ``Embedder`` built on first use (building one imports the ``openai`` SDK, most of a
    second), so neither start-up nor a bot without embeddings pays for it."""

    def __init__(self, factory: Callable[[], Awaitable[Embedder]]) -> None:
        self._factory = factory
        self._task: asyncio.Task[Embedder] | None = None

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())
        embedder = await asyncio.shield(self._task)
        return await embedder.embed(texts, query=query)

    async def close(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled() and self._task.exception() is None:
            await self._task.result().close()
