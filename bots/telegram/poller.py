"""getUpdates long polling that confirms an update to Telegram only after it is stored.

Telegram forgets an update once ``getUpdates`` is called with an ``offset`` past its id. PTB's
stock ``Updater`` asks for the next batch (with that offset) as soon as it has queued the
current one for handlers, so a crash between fetching and storing would lose messages Telegram
already considers delivered. This poller runs the same protocol with the ``Bot`` inside the
``Application`` lifecycle, but in a different order:

    fetch a batch → ``handle`` it to completion (the adapter stores each update, in order, with
    ``runtime.accept``, and only then *spawns* the slow answers) → then the next fetch carries
    the offset that confirms the batch.

So an update is never skipped. Handling the batch sequentially also keeps each person's
messages in arrival order; the answers themselves run concurrently. A crash after storing but
before the next fetch redelivers those updates on restart; their ``update_id`` is kept in the
stored route so a restart can recognise them.

Several bot processes on one database elect one poller among them (the adapter holds the
``role`` while this runs): the poller checks that it still holds it before each fetch and stops
with ``RoleLost`` once it does not, so a process that stalled and was replaced steps down
rather than competing with its successor. An update both fetched is stored once (its
``update_id`` is recognised).

Errors: a 409 Conflict (another process polls with this token, or a webhook is set) and a
rejected token are fatal: one clear log line, and ``run`` returns exit code 1 (a conflict while
the role is lost means this process was replaced: ``RoleLost``; while it is held, the first few
in a row are taken for the last request of a poller that was replaced, and polled through).
Flood control (429) waits as long as Telegram asks; timeouts, network errors and 5xx retry
with exponential backoff, logged once per outage rather than once per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from agentcore.storage.protocols import Role
from bots.telegram.errors import retry_after_seconds

log = logging.getLogger("bots.telegram")

CONFLICT_HELP = (
    "another process is receiving updates for this bot token (HTTP 409 Conflict: %s). "
    "Only one bot instance may poll a token, and no webhook may be set: stop the other one, "
    "then start this one again."
)
# PTB puts the token itself into InvalidToken's message, so that message is never logged.
TOKEN_HELP = "the Bot API server rejected the bot token; check TELEGRAM_TOKEN"

STALE_CONFLICTS = 3  # 409s in a row a shared poller holding the role takes for a replaced one's
ALLOWED_UPDATES = ("message",)  # new messages only: no edits, channel posts or callbacks

# Stores a batch of updates (or deliberately drops some); must not raise.
Handler = Callable[[Sequence[Update]], Awaitable[None]]


class RoleLost(Exception):
    """This process no longer holds the poller role: another process polls now."""


class UpdatePoller:
    def __init__(
        self,
        bot: Bot,
        handle: Handler,
        *,
        timeout: float = 10.0,  # seconds one long poll may wait for updates
        backoff: tuple[float, float] = (1.0, 30.0),  # first and longest wait after a failure
        role: Role | None = None,  # the poller role, when processes elect one
        stale_conflicts: int = 0,  # 409s in a row polled through (other processes may poll)
    ) -> None:
        self._bot = bot
        self._handle = handle
        self._role = role
        self._timeout = timedelta(seconds=timeout)
        self._backoff = backoff
        self._offset: int | None = None  # the next update id we want (confirms all before it)
        self._confirmed: int | None = None  # the offset Telegram last saw
        self._failures = 0
        self._conflicts = 0  # 409s in a row while holding the poller role
        self._stale_conflicts = stale_conflicts
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()  # set when the first getUpdates has been issued

    def stop(self) -> None:
        """Ask ``run`` to finish: a long poll in flight is abandoned (nothing is lost by that),
        a batch being stored is finished first."""
        self._stopping.set()

    async def run(self) -> int:
        """Poll until stopped (returns 0) or a fatal error (returns 1); ``RoleLost`` once the
        poller role is lost."""
        while not self._stopping.is_set():
            await self._check_role()
            try:
                updates = await self._fetch()
            except Conflict as exc:
                await self._check_role()
                if self._stale_conflict():
                    continue
                log.error(CONFLICT_HELP, exc.message)
                return 1
            except InvalidToken:
                log.error(TOKEN_HELP)
                return 1
            except TelegramError as exc:
                await self._recover(exc)
                continue
            if updates is None:
                await self._check_role()  # the role went while waiting, or:
                break  # stopped while waiting
            self._recovered()
            if updates:
                await self._handle(updates)
                self._offset = updates[-1].update_id + 1
        await self._confirm()
        return 0

    async def _check_role(self) -> None:
        if self._role is not None and not await self._role.alive():
            raise RoleLost

    async def _fetch(self) -> list[Update] | None:
        """One long poll; None if ``stop`` was called (or the role lost) meanwhile."""
        offset = self._offset
        poll = asyncio.ensure_future(
            self._bot.get_updates(
                offset=offset, timeout=self._timeout, allowed_updates=ALLOWED_UPDATES
            )
        )
        self.ready.set()
        stopping: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopping.wait())]
        if self._role is not None:
            stopping.append(asyncio.ensure_future(self._role.lost()))
        try:
            await asyncio.wait([poll, *stopping], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            poll.cancel()
            raise
        finally:
            for waiter in stopping:
                waiter.cancel()
        if not poll.done():
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await poll
            return None
        updates = poll.result()  # raises the request's error, if any
        self._confirmed = offset
        return list(updates)

    async def _recover(self, exc: TelegramError) -> None:
        if isinstance(exc, RetryAfter):
            seconds = retry_after_seconds(exc)
            log.warning("flood control on getUpdates; waiting %.0fs", seconds)
            await self._pause(seconds)
            return
        self._failures += 1
        first, longest = self._backoff
        delay = min(longest, first * 2 ** (self._failures - 1))
        if self._failures == 1:
            log.warning("getUpdates failed (%s); retrying until it works", exc)
        else:
            log.debug("getUpdates failed again (%s); next try in %.1fs", exc, delay)
        await self._pause(delay)

    def _stale_conflict(self) -> bool:
        """Whether a 409 while this process holds the poller role may be a replaced poller's
        last request (paused, it had one in flight or sent one before learning it was
        replaced; Telegram ends the other poll): then poll again, a few times in a row at most,
        since that process steps down as soon as it runs."""
        self._conflicts += 1
        if self._conflicts > self._stale_conflicts:
            return False
        log.warning("another process's getUpdates ended this one's (a replaced poller); again")
        return True

    def _recovered(self) -> None:
        self._conflicts = 0
        if self._failures:
            log.info("getUpdates works again after %d failure(s)", self._failures)
            self._failures = 0

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _confirm(self) -> None:
        """Tell Telegram about updates stored since the last fetch, so a restart does not
        receive them again. A short poll (timeout 0) that takes at most one new update, which
        stays unconfirmed and arrives again on the next start."""
        if self._offset is None or self._offset == self._confirmed:
            return
        try:
            await self._bot.get_updates(offset=self._offset, timeout=timedelta(0), limit=1)
            self._confirmed = self._offset
        except TelegramError as exc:
            log.warning("could not confirm the last updates at shutdown (%s)", exc)
