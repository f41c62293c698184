"""Logging for operators: one stream (stderr), and secrets scrubbed from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

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


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP client logs every request URL, and Telegram puts the token in the URL.
    for noisy in ("httpx", "httpcore", "httpx2", "openai", "telegram.ext", "discord.gateway"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
