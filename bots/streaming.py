"""An answer shown as it is written: one platform message edited as the text grows.

``GrowingReply`` is the same for every platform; a ``MessageEditor`` does the platform's sends
and edits. Edits are paced: at most one per ``Pacing.interval()`` in a chat (at least
``edit_seconds``, longer when many answers stream at once so the bot stays under the platform's
overall rate), always showing the newest text, never the same text twice. A platform's 429
(``RateLimited``) pauses that answer for as long as asked. Past the platform's length the text
is split as a finished reply would be (``split``, fence-aware) and the answer goes on in a new
message. ``finish`` shows the final text, so what the person sees equals the stored reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from typing import Protocol

log = logging.getLogger(__name__)

FINAL_TRIES = 3  # attempts at the final edit, through rate limits


class RateLimited(Exception):
    """The platform asked to wait ``seconds`` before the next request."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds:.1f}s")
        self.seconds = seconds


class MessageEditor(Protocol):
    """One answer's messages on a platform. Raise ``RateLimited`` for a 429; other failures
    are logged and reported by the return value."""

    async def send(self, text: str) -> str | None:
        """Send a new message of the answer; its id (None if it could not be sent)."""
        ...

    async def edit(self, message_id: str, text: str) -> bool: ...

    async def delete(self, message_id: str) -> None: ...


class Pacing:
    """Edit pacing shared by an adapter's streaming answers: per chat, at least ``interval()``
    between edits; the interval grows with the number of answers streaming at once."""

    def __init__(self, edit_seconds: float, edits_per_second: float) -> None:
        self._edit_seconds = edit_seconds
        self._rate = edits_per_second
        self.active = 0  # answers streaming now
        self._next: dict[Hashable, float] = {}  # chat → when it may be edited next
        self._users: dict[Hashable, int] = {}

    def interval(self) -> float:
        return max(self._edit_seconds, self.active / self._rate)

    def join(self, chat: Hashable) -> None:
        self.active += 1
        self._users[chat] = self._users.get(chat, 0) + 1

    def leave(self, chat: Hashable) -> None:
        self.active -= 1
        self._users[chat] -= 1
        if not self._users[chat]:
            del self._users[chat]
            self._next.pop(chat, None)

    async def turn(self, chat: Hashable) -> None:
        """Wait until ``chat`` may be edited, and book the next slot."""
        now = time.monotonic()
        wait = self._next.get(chat, now) - now
        self._next[chat] = max(now, self._next.get(chat, now)) + self.interval()
        if wait > 0:
            await asyncio.sleep(wait)

    def hold(self, chat: Hashable, seconds: float) -> None:
        """The platform said wait: nothing in ``chat`` before ``seconds`` from now."""
        self._next[chat] = max(self._next.get(chat, 0.0), time.monotonic() + seconds)


class GrowingReply:
    def __init__(
        self,
        editor: MessageEditor,
        split: Callable[[str], list[str]],
        pacing: Pacing,
        chat: Hashable,
    ) -> None:
        self._editor = editor
        self._split = split
        self._pacing = pacing
        self._chat = chat
        self._latest = ""
        self._ids: list[str] = []
        self._shown: list[str] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._request: asyncio.Task[None] | None = None  # the edit under way, if any
        self._ended = False  # finished or abandoned
        self.edits = 0  # requests made (sends and edits), for the benchmark

    @property
    def started(self) -> bool:
        return self._task is not None

    async def grow(self, text: str) -> None:
        """The answer so far; shown at the next paced edit (``ReplySink.grow``)."""
        if not text.strip():
            return
        self._latest = text
        self._changed.set()
        if self._task is None:
            self._pacing.join(self._chat)
            self._task = asyncio.create_task(self._show_as_it_grows())

    async def finish(self, text: str) -> bool:
        """Show ``text`` as the final answer; False if nothing was streamed (the caller sends
        it the usual way)."""
        if self._task is None or self._ended:
            return False
        await self._stop_growing()
        try:
            for _ in range(FINAL_TRIES):
                try:
                    await self._show(text)
                    break
                except RateLimited as exc:
                    self._pacing.hold(self._chat, exc.seconds)
            for extra in self._ids[len(self._split(text)) :]:
                await self._pacing.turn(self._chat)
                await self._editor.delete(extra)
        finally:
            self._pacing.leave(self._chat)
        return True

    async def abandon(self) -> None:
        """The answer will not be finished here: its turn was taken over by another process
        (this one lost the person's lock) and answered in a message of its own. What was shown
        of it is taken back. Nothing if it was finished, or nothing was streamed."""
        if self._task is None or self._ended:
            return
        await self._stop_growing()
        try:
            for shown in self._ids:
                await self._pacing.turn(self._chat)
                await self._editor.delete(shown)
        finally:
            self._pacing.leave(self._chat)

    async def _stop_growing(self) -> None:
        assert self._task is not None
        self._ended = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._request is not None:  # an edit under way is let finish: a message sent but
            with contextlib.suppress(Exception):  # not recorded would be sent twice
                await self._request

    async def _show_as_it_grows(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            self._request = asyncio.ensure_future(self._show(self._latest))
            try:
                await asyncio.shield(self._request)
            except RateLimited as exc:
                log.info("streaming paused for %.1fs by the platform's rate limit", exc.seconds)
                self._pacing.hold(self._chat, exc.seconds)
                self._changed.set()

    async def _show(self, text: str) -> None:
        """Make the messages show ``text``: edit those that differ, send the parts past them,
        each request in its own paced slot."""
        for i, part in enumerate(self._split(text)):
            if i < len(self._ids):
                if self._shown[i] != part:
                    await self._pacing.turn(self._chat)
                    self.edits += 1
                    if await self._editor.edit(self._ids[i], part):
                        self._shown[i] = part
                continue
            await self._pacing.turn(self._chat)
            self.edits += 1
            sent = await self._editor.send(part)
            if sent is None:
                return  # try again with the next growth
            self._ids.append(sent)
            self._shown.append(part)
