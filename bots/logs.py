"""Logging for operators: one stream (stderr), and secrets scrubbed from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from bots.text import visible

REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replace any configured token or key that slips into a log message with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in self._secrets:
            scrubbed = scrubbed.replace(secret, REDACTED)
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self._secrets:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class VisibleFormatter(logging.Formatter):
    """Log lines quote what people sent (names, commands); their control characters are shown,
    not sent to the operator's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time, so the terminal chat's prompt can
    print log lines above itself (prompt_toolkit's ``patch_stdout`` swaps ``sys.stderr``)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    handler = StderrHandler()
    handler.setFormatter(VisibleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP client logs every request URL, and Telegram puts the token in the URL; at DEBUG,
    # aiosqlite logs every statement with its parameters (messages, memory, files' bytes).
    for noisy in (
        "httpx",
        "httpcore",
        "httpx2",
        "openai",
        "telegram.ext",
        "discord.gateway",
        "aiosqlite",
    ):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
