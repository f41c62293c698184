"""Telegram: every person who messages the bot talks to their own agent.

Imported only when ``TELEGRAM_TOKEN`` is set (python-telegram-bot is not loaded otherwise).
"""

from __future__ import annotations

from typing import Any

from telegram.ext import AIORateLimiter, ApplicationBuilder

from bots.telegram.adapter import TelegramAdapter, TelegramApp

__all__ = ["TelegramAdapter", "build_application"]

FLOOD_RETRIES = 5  # how often one request waits out Telegram's flood control before giving up


def build_application(token: str, base_url: str = "", *, rate_limited: bool = True) -> TelegramApp:
    """A PTB ``Application`` for ``token``; ``base_url`` is a self-hosted Bot API server root
    (e.g. ``http://127.0.0.1:8081``), to which PTB appends ``/bot<token>/<method>``."""
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(token).updater(None).job_queue(None)
    )
    if base_url:
        root = base_url.rstrip("/")
        builder = builder.base_url(root + "/bot").base_file_url(root + "/file/bot")
    if rate_limited:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=FLOOD_RETRIES))
    application: TelegramApp = builder.build()
    return application
