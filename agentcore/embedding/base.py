"""The embedding endpoint seam: texts in, one vector each out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from agentcore.lazy import OnFirstUse


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
        self._built = OnFirstUse(factory)

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        return await (await self._built.get()).embed(texts, query=query)

    async def close(self) -> None:
        await self._built.close()
