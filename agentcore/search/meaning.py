"""Search by meaning beside the lexical index: the query's vector, and one fused ranking.

A search that has a query embedder (``QueryEmbedder``, set on the store by the composition root
when ``[search] embedding_model`` is configured) ranks the person's rows twice, by their terms
(``engine``) and by the cosine of their stored vectors to the query's (``vectors``), and merges
the two lists by reciprocal rank (``fuse``). Rows without a vector yet, and every search while
the endpoint is down, are ranked by their terms alone. Nothing here imports numpy: the lexical
path does not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agentcore.records import SearchHit
from agentcore.search.analysis import part_terms, word_parts, word_spans
from agentcore.search.query import IGNORED, STOPWORDS

# Reciprocal-rank fusion: a row's score is the sum over the lists of weight / (RRF_K + rank).
# Chosen on the LoCoMo dev conversations with two small local models (multilingual-e5-small,
# all-MiniLM-L6-v2; README "Search by meaning"): the lexical ranking is the stronger one there
# (R@10 77 against the vectors' 61-66), so the vectors weigh less and the top ranks count more
# than with Cormack et al.'s k = 60 and equal weights, which lost 2-5 points of R@10 to
# lexical. The same k and weight were chosen for each conversation left out by a sweep over
# the other four.
RRF_K = 10
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 0.5
DEPTH = 50  # rows taken from each list before fusing (100 changed nothing measurable)

# A word in more than this share of the person's rows says whose rows they are (in a chat log
# kept as "Name: text", the two names), not what they are about. Small embedding models let
# such a word outweigh the rest of a question ("When did Melanie paint a sunrise?" comes out
# near every turn of Melanie's), so the query is embedded without it; the lexical half still
# weighs it as usual. On the LoCoMo dev questions this raised the vectors' own R@10 from 51 to
# 61 (MiniLM) and 55 to 66 (e5). Below MIN_ROWS a share is too coarse to call a word common.
COMMON_SHARE = 0.3
MIN_ROWS = 50
_SPACES_RE = re.compile(r"\s+")


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


def without_common_words(text: str, df: Mapping[str, int], rows: int) -> str:
    """``text`` without the words found in more than COMMON_SHARE of the person's ``rows``
    (``df``: rows holding each term; a word goes only if all of its terms are common, "Mel's"
    with "Mel"). Function words stay (they make it a question); so does every word if nothing
    but function and question words would be left ("What did Mel say?"), or the person has
    fewer than MIN_ROWS rows."""
    if rows < MIN_ROWS:
        return text
    normal, spans = word_spans(text)
    common = [span for span in spans if _is_common(normal[span[0] : span[1]], df, rows)]
    topical = [span for span in spans if _topical(normal[span[0] : span[1]])]
    if not common or not set(topical) - set(common):
        return text
    kept, last = [], 0
    for start, end in common:
        kept.append(normal[last:start])
        last = end
    kept.append(normal[last:])
    return _SPACES_RE.sub(" ", "".join(kept)).strip()


def _topical(word: str) -> bool:
    """Says what the question is about: not only function or question words."""
    return any(part not in IGNORED for part in word_parts(word))


def _is_common(word: str, df: Mapping[str, int], rows: int) -> bool:
    terms = [t for p in word_parts(word) if p not in STOPWORDS for t in part_terms(p)]
    return bool(terms) and all(t in df and df[t] > COMMON_SHARE * rows for t in terms)


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
