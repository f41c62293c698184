"""Search by meaning beside the lexical index: the query's vector, and one fused ranking.

A search that has a query embedder (``QueryEmbedder``, set on the store by the composition root
when ``[search] embedding_model`` is configured) ranks the person's rows twice, by their terms
(``engine``) and by the cosine of their stored vectors to the query's (``vectors``), and merges
the two lists by reciprocal rank (``fuse``). Rows without a vector yet, and every search while
the endpoint is down, are ranked by their terms alone. Nothing here imports numpy: the lexical
path does not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agentcore.records import SearchHit

# Reciprocal-rank fusion: a row's score is the sum over the lists of weight / (RRF_K + rank).
# Chosen on the LoCoMo dev conversations with two small local models (multilingual-e5-small,
# all-MiniLM-L6-v2; README "Search by meaning"): the lexical ranking is the stronger one there
# (R@10 77 against the vectors' 51-55), so the vectors weigh less and the top ranks count more
# than with Cormack et al.'s k = 60 and equal weights, which lost 5 points of R@10 to lexical.
RRF_K = 10
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 0.3
DEPTH = 50  # rows taken from each list before fusing (100 changed nothing measurable)


@dataclass(frozen=True, slots=True)
class QueryVector:
    """A query's embedding under the stored vectors' model, unit length (float32 values)."""

    model_id: int
    values: bytes  # float32, native byte order


class QueryEmbedder(Protocol):
    async def query_vector(self, text: str) -> QueryVector | None:
        """The vector of ``text``; None when there is none to be had quickly (no model yet, the
        endpoint down or slow): the search is then lexical only."""
        ...


class VectorRows(Protocol):
    async def vectors(self, model_id: int) -> list[tuple[int, bytes]]:
        """``(row id, int8 vector)`` for each of the person's rows embedded by ``model_id``."""
        ...


def fuse(lexical: Sequence[int], by_meaning: Sequence[int]) -> list[tuple[int, float]]:
    """One ranking of row ids from the lexical and the vector ranking, best first, by
    weighted reciprocal rank (ties: the lexical order, then the vector order)."""
    scores: dict[int, float] = {}
    for weight, ranking in ((LEXICAL_WEIGHT, lexical), (VECTOR_WEIGHT, by_meaning)):
        for rank, row_id in enumerate(ranking, start=1):
            scores[row_id] = scores.get(row_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def newest_first(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """The best matches as ``/search`` lists them: newest first."""
    return sorted(hits, key=lambda h: (h.created_at, h.id), reverse=True)
