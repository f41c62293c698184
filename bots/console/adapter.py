"""Chat with your agent in a terminal, interactively or with piped input (one message a line).

Lines are answered one at a time, in order; at end of input the adapter finishes with exit code
0. Replies go to stdout, logs to stderr, so ``printf 'hi\n' | python -m bots`` prints only the
answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import re
import sys
import threading
from pathlib import Path
from typing import TextIO

from agentcore.clock import Clock
from agentcore.outbox import Delivery
from agentcore.runtime import AgentRuntime
from agentcore.schedule.model import DeliveryScope
from agentcore.storage.protocols import StorageError
from agentcore.types import AgentKey, ChatKind, InboundMessage, Reply

_EOF = None
log = logging.getLogger(__name__)


def console_user(name: str | None) -> AgentKey:
    """``console:<name>``; the default name is the OS user's."""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "local"
    return AgentKey("console", re.sub(r"\s+", "_", name.strip()) or "local")


class ConsoleAdapter:
    name = "console"

    def __init__(
        self,
        runtime: AgentRuntime,
        clock: Clock,
        user: AgentKey,
    ) -> None:
        self._runtime = runtime
        self._clock = clock
        self._user = user
        self._stdin: TextIO = sys.stdin
        self._stdout: TextIO = sys.stdout
        self._interactive = self._stdin.isatty()
        self._download_dir = Path.cwd()  # where exported files are saved
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[int] | None = None
        self._busy = False  # a message is being answered
        self._stopping = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # A daemon thread, not the default executor: a blocked readline() must not keep the
        # process alive after Ctrl-C.
        threading.Thread(target=self._read_lines, args=(loop,), daemon=True).start()
        self._task = asyncio.create_task(self._chat())
        if self._interactive:
            self._write(f"Chatting as {self._user}. /help lists commands; Ctrl-D or Ctrl-C quits.")

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for line in self._stdin:
                loop.call_soon_threadsafe(self._lines.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass  # stdin closed under us
        finally:
            # RuntimeError: the loop is already closed, we are exiting anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lines.put_nowait, _EOF)

    async def _chat(self) -> int:
        while not self._stopping:
            self._prompt()
            line = await self._lines.get()
            if line is _EOF:
                await self._answer_held_back()
                return 0
            if not line.strip():
                continue
            message = InboundMessage(
                self._user,
                line,
                self._clock.now(),
                display_name=self._user.user_id,
                chat=ChatKind.PRIVATE,
            )
            self._busy = True
            try:
                self._show(await self._runtime.handle(message))
            finally:
                self._busy = False
        return 0

    async def _answer_held_back(self) -> None:
        """At the end of input, lines held back by the flood limit are answered too, so piped
        input gets every answer before the bot exits."""
        try:
            tickets = await self._runtime.recover(self.name)
        except StorageError as exc:
            log.warning("cannot list held-back messages: %s", exc)
            return
        for ticket in tickets:
            if ticket.message.key == self._user:
                self._show(await self._runtime.answer(ticket))

    @property
    def scope(self) -> DeliveryScope:
        return DeliveryScope(self.name, self._user.user_id)

    async def deliver(self, delivery: Delivery) -> bool:
        """A reminder, printed while the chat is open (on its own line, then the prompt again
        if the person is at the prompt)."""
        if self._interactive and not self._busy:
            self._stdout.write("\n")
        self._show(delivery.reply)
        if not self._busy:
            self._prompt()
        return True

    def _prompt(self) -> None:
        if self._interactive:
            self._stdout.write("you> ")
            self._stdout.flush()

    def _show(self, reply: Reply) -> None:
        if reply.text.strip():
            self._write(reply.text)
        for attachment in reply.attachments:
            path = self._download_dir / attachment.filename
            path.write_bytes(attachment.data)
            self._write(f"(saved {path})")

    def _write(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()

    async def finished(self) -> int:
        assert self._task is not None, "start() first"
        return await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Finish the message being answered (if any), then stop reading."""
        self._stopping = True
        if self._task is None or self._task.done():
            return
        if not self._busy:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
