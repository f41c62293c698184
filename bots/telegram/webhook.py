"""Receiving Telegram's updates by webhook: for several bot processes behind a load balancer.

Telegram POSTs each update to the webhook URL and sends a chat's next update only once this one
was answered with a 2xx; anything else (an error, a timeout, a worker that died, the balancer's
502) makes it send the same update again later. So each process answers 200 only after the
update is stored (``handle``, as the poller does), and a chat's messages are stored in the order
they were sent, whichever process receives them; an update delivered twice is recognised by its
``update_id``. Requests without the secret token Telegram was given (every process derives the
same one from the bot token) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update

from bots.telegram.poller import ALLOWED_UPDATES, Handler

log = logging.getLogger("bots.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # an update is a few KB; refuse anything far larger


def webhook_secret(token: str) -> str:
    """The secret token Telegram sends with every update (the same in every process)."""
    return hashlib.sha256(b"agentcore webhook " + token.encode()).hexdigest()


class WebhookServer:
    def __init__(
        self, bot: Bot, handle: Handler, url: str, listen: tuple[str, int], secret: str
    ) -> None:
        self._bot = bot
        self._handle = handle
        self._url = url
        self._listen = listen
        self._secret = secret
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve the webhook, then tell Telegram where it is (``TelegramError``/``OSError``
        if either fails)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(urlsplit(self._url).path or "/", self._receive)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        host, port = self._listen
        await web.TCPSite(self._runner, host, port).start()
        await self._bot.set_webhook(
            self._url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES
        )
        log.info("receiving updates at the webhook %s (served on %s:%d)", self._url, host, port)

    async def stop(self) -> None:
        """Stop receiving; updates being stored finish first. The webhook stays set: other
        processes may be serving it (and Telegram keeps updates until one answers)."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("refused a webhook request without the right secret token")
            return web.Response(status=401)
        try:
            data = await request.json()
            update = Update.de_json(data, self._bot) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError):  # not JSON
            update = None
        if update is None:  # not an update: Telegram never sends one, so never sent again
            log.warning("refused a webhook request that is not a Telegram update")
            return web.Response(status=400)
        await self._handle([update])  # stored (or deliberately dropped) before the 200
        return web.Response()
