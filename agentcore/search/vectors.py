"""Vectors as stored (int8) and compared (float32 cosine, brute force with numpy).

A person's vectors are a few thousand rows at most in the common case; a matrix product over
them takes well under a millisecond, so no approximate index is kept (measured in
bench/search_latency.py at 1M messages).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


def checked(values: object, dims: int | None) -> tuple[Floats | None, str]:
    """One vector from the endpoint as float32, or None and what is wrong with it: not a list
    of numbers, a dimension other than ``dims`` (the model's, once known), a value that is not
    a finite number (NaN, infinity), or all zeros (no direction to compare)."""
    try:
        row = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        return None, "not a list of numbers"
    if row.ndim != 1 or row.shape[0] == 0:
        return None, "not a list of numbers"
    if dims is not None and row.shape[0] != dims:
        return None, f"{row.shape[0]} dimensions, not {dims}"
    if not np.all(np.isfinite(row)):
        return None, "values that are not numbers"
    if not np.any(row):
        return None, "only zeros"
    return row, ""


def quantize(row: Floats) -> bytes:
    """int8 components, the largest magnitude scaled to 127 (the scale does not change a
    cosine, so it is not kept)."""
    peak = float(np.max(np.abs(row)))
    return (np.round(row * (127.0 / peak))).astype(np.int8).tobytes()


def unit(row: Floats) -> bytes:
    """The query's float32 vector scaled to unit length, as bytes."""
    return (row / np.linalg.norm(row)).astype(np.float32).tobytes()


def nearest(query: bytes, rows: Sequence[tuple[int, bytes]], k: int) -> list[int]:
    """The ids of the ``k`` rows most similar to ``query`` (cosine), best first. Rows of
    another length than the query (a model that changed its dimension) are left out."""
    q = np.frombuffer(query, dtype=np.float32)
    dims = q.shape[0]
    if any(len(v) != dims for _, v in rows):
        rows = [(i, v) for i, v in rows if len(v) == dims]
    if not rows:
        return []
    ids = np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join([v for _, v in rows]), dtype=np.int8).reshape(-1, dims)
    matrix = matrix.astype(np.float32)
    lengths = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    scores = (matrix @ q) / np.maximum(lengths, 1e-6)
    top = min(k, len(rows))
    best = np.argpartition(-scores, top - 1)[:top]
    return [int(i) for i in ids[best[np.argsort(-scores[best])]]]
