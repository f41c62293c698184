"""A search's query vector: quick or not at all (``search.meaning.QueryEmbedder``).

A search waits at most ``query_timeout`` for its query's vector; an endpoint that failed is not
asked again until its retry time, so a down endpoint costs searches nothing but their lexical
half. Recent queries' vectors are kept (automatic recall and the agent's own search often ask
the same words).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import datetime, timedelta

from agentcore.clock import Clock
from agentcore.embedding.base import Embedder, EmbeddingError
from agentcore.records import EmbeddingModel
from agentcore.search.meaning import QueryVector

log = logging.getLogger(__name__)

CACHED_QUERIES = 256


class QueryVectors:
    def __init__(
        self,
        embedder: Embedder,
        model: EmbeddingModel,
        clock: Clock,
        timeout: float,
        retry_seconds: float,
    ) -> None:
        self._embedder = embedder
        self._model = model
        self._clock = clock
        self._timeout = timeout
        self._retry = timedelta(seconds=retry_seconds)
        self._down_until: datetime | None = None
        self._cache: OrderedDict[str, QueryVector] = OrderedDict()

    def knows_dims(self, model: EmbeddingModel) -> None:
        """The model as recorded once its dimension is known (queries of another are unusable)."""
        self._model = model

    async def query_vector(self, text: str) -> QueryVector | None:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        if self._down_until is not None and self._clock.now() < self._down_until:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                [values] = await self._embedder.embed([text], query=True)
        except (EmbeddingError, TimeoutError, ValueError) as exc:
            self._down_until = self._clock.now() + self._retry
            log.warning(
                "search: no query embedding (%s); searching by words only for %.0fs",
                exc or f"none within {self._timeout:g}s",
                self._retry.total_seconds(),
            )
            return None
        return self._keep(text, values)

    def _keep(self, text: str, values: object) -> QueryVector | None:
        from agentcore.search.vectors import checked, unit  # noqa: PLC0415 (numpy)

        row, problem = checked(values, self._model.dims)
        if row is None:
            log.warning("search: the query's embedding is unusable (%s); by words only", problem)
            return None
        vector = QueryVector(self._model.id, unit(row))
        self._cache[text] = vector
        if len(self._cache) > CACHED_QUERIES:
            self._cache.popitem(last=False)
        return vector
