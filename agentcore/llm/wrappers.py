"""Composable ``LLMClient`` decorators: a concurrency cap and background loading."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from agentcore.lazy import OnFirstUse
from agentcore.llm.base import ClosableLLM, LLMRequest, LLMResponse, LLMUnavailable

C = TypeVar("C", bound=ClosableLLM)


class ConcurrencyCappedLLM:
    """At most ``limit`` requests in flight to the model; the rest wait their turn (FIFO)."""

    def __init__(self, inner: ClosableLLM, limit: int) -> None:
        if limit < 1:
            raise ValueError("concurrency limit must be at least 1")
        self._inner = inner
        self._semaphore = asyncio.Semaphore(limit)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        async with self._semaphore:
            return await self._inner.complete(request)

    async def close(self) -> None:
        await self._inner.close()


class LazyLLM(Generic[C]):
    """An LLM client whose construction (e.g. importing the ``openai`` SDK, ~0.7 s) runs in the
    background: ``start()`` kicks it off once the adapters are receiving, and a request that
    arrives meanwhile waits only for the rest of the load."""

    def __init__(self, factory: Callable[[], Awaitable[C]]) -> None:
        self._client = OnFirstUse(factory)

    def start(self) -> None:
        self._client.start()

    async def ready(self) -> C:
        try:
            return await self._client.get()
        except Exception as exc:  # e.g. the SDK failed to import: the person gets the short
            # "couldn't reach my model" message (LLMError), the operator this line in the log
            raise LLMUnavailable(f"the model client could not be built: {exc!r}") from exc

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return await (await self.ready()).complete(request)

    async def close(self) -> None:
        await self._client.close()
