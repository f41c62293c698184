"""What the Telegram and Discord adapters share around the runtime.

``Answers`` keeps the answers an adapter has started, so that ``stop`` can let them go out (for
a bounded time); runs a ticket's turn while the platform shows "typing…", its reply finishing
the streamed answer or delivered by the adapter's ``deliver`` (from inside the turn: see
``AgentRuntime.answer``); and answers
what was stored but never answered: left over from before a restart or by a process that died
(at start, then swept every minute or so) and held back by the flood limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from agentcore.runtime import AgentRuntime, Deliver, Ticket
from agentcore.types import InboundMessage, Reply, ReplyKind, ReplySink
from bots.streaming import GrowingReply

log = logging.getLogger(__name__)

T = TypeVar("T")
SOMETHING_WENT_WRONG = "Sorry, something went wrong on my side. Please try again."


class Answers:
    def __init__(self, runtime: AgentRuntime, platform: str) -> None:
        self._runtime = runtime
        self._platform = platform
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.Task[None] | None = None

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` as a task that ``drain`` waits for; an unexpected error is logged."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s failed", self._platform, task.get_name(), exc_info=task.exception())

    async def answer(
        self,
        ticket: Ticket,
        typing: Callable[[], Coroutine[Any, Any, None]],
        stream: GrowingReply,
        deliver: Deliver,
        sink: ReplySink,
    ) -> None:
        """Answer ``ticket``, with ``typing`` (the platform's "typing…" loop) running until
        the reply goes out, and the turn's notices and growing answer sent through ``sink``:
        the reply finishes what ``stream`` showed, or else goes out through ``deliver``. Never
        raises: a bug becomes a short apology to the person and a traceback in the log."""
        shown = None if ticket.reply is not None else asyncio.create_task(typing())

        async def streamed(message: InboundMessage, reply: Reply) -> None:
            # The answer streamed so far becomes the reply; else (nothing streamed, or an
            # earlier turn's reply sent again after a crash) it is sent as usual.
            if message is not ticket.message or not await stream.finish(reply.text):
                await deliver(message, reply)

        async def deliver_now(message: InboundMessage, reply: Reply) -> None:
            if shown is not None:
                shown.cancel()  # "typing…" after the reply would promise another one
            await streamed(message, reply)

        try:
            reply = await self._runtime.answer(ticket, sink, deliver=deliver_now)
        except Exception:
            log.exception("%s: answering %s failed", self._platform, ticket.message.key)
            reply = Reply(SOMETHING_WENT_WRONG, ReplyKind.ERROR)
        finally:
            if shown is not None:
                shown.cancel()
        if not reply.is_empty:
            await streamed(ticket.message, reply)
        await stream.abandon()  # its turn was answered by another process: take back what it showed

    async def answer_waiting(self, answer: Callable[[Ticket], object]) -> None:
        """Hand ``answer`` a ticket for each person whose messages were stored before a crash
        or restart but never answered; then, in the background until ``drain``, for each
        person whose messages the flood limits held back."""
        for ticket in await self._runtime.recover(self._platform):
            log.info("%s: answering a message left over from before the restart", self._platform)
            answer(ticket)
        self._sweep = asyncio.create_task(self._held_back(answer), name=f"{self._platform}-held")

    async def _held_back(self, answer: Callable[[Ticket], object]) -> None:
        async for ticket in self._runtime.held_back_tickets(self._platform):
            answer(ticket)

    async def drain(self, grace: float, queued: Awaitable[None] | None = None) -> None:
        """Stop sweeping; then give ``queued`` (work about to become answers, if the adapter
        has such a queue) and the answers in progress, including any they start meanwhile,
        ``grace`` seconds to finish. Answers still running then are cancelled."""
        if self._sweep is not None:
            self._sweep.cancel()
        try:
            await asyncio.wait_for(self._idle(queued), grace)
        except TimeoutError:
            late = set(self._tasks)
            log.warning(
                "%s: %d answer(s) still running after %.0fs; dropping them",
                self._platform,
                len(late),
                grace,
            )
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def _idle(self, queued: Awaitable[None] | None) -> None:
        if queued is not None:
            await queued
        while self._tasks:
            await asyncio.wait(set(self._tasks))
