"""Reading PTB's exceptions."""

from __future__ import annotations

from telegram.error import RetryAfter


def retry_after_seconds(exc: RetryAfter) -> float:
    # The public ``retry_after`` warns while PTB migrates it from int to timedelta; PTB's own
    # AIORateLimiter reads the timedelta underneath the same way.
    return exc._retry_after.total_seconds()
