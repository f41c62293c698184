"""Chat with your agent in a terminal, interactively or with piped input (one message a line).

Lines are answered one at a time, in order; at end of input the adapter finishes with exit code
0. Replies go to stdout, logs to stderr, so ``printf 'hi\n' | python -m bots`` prints only the
answer. In a terminal the prompt has line editing and history (prompt_toolkit), log lines appear
above it, and replies are rendered Markdown (rich); piped, every reply is plain text.
``/attach PATH [caption]`` sends a file (a photo, voice note, audio or document) the way the
chat platforms do; answers are printed as they are written when streaming is on.

Stopping: the first Ctrl-C (or SIGTERM) stops taking input and lets the answer being written
finish; a second one stops at once (the message is stored already, so nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import mimetypes
import os
import re
import shlex
import sys
from pathlib import Path

from agentcore.clock import Clock
from agentcore.outbox import Delivery
from agentcore.runtime import AgentRuntime
from agentcore.schedule.model import DeliveryScope
from agentcore.storage.protocols import StorageError
from agentcore.types import (
    AgentKey,
    Attachment,
    ChatKind,
    InboundFile,
    InboundMessage,
    Reply,
    ReplyKind,
)
from bots.console.terminal import Interrupted, PipedTerminal, Terminal

ATTACH = "/attach"
log = logging.getLogger(__name__)

MAX_USER_NAME = 64
STOPPING = "Stopping after this answer; press Ctrl-C again to stop now."
STOPPED = "Stopped. Your message is saved, so nothing is lost."


def read_file(path: Path, limit: int) -> InboundFile:
    """A local file as the chat platforms deliver one (not read past ``limit`` bytes: the
    core tells the person the limit)."""
    size = path.stat().st_size
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if size > limit:
        return InboundFile(path.name, mime, b"", size)
    return InboundFile(path.name, mime, path.read_bytes())


def _attach_arguments(line: str) -> tuple[Path, str]:
    """``/attach PATH [caption]`` → the path (quoted if it has spaces) and the caption."""
    words = shlex.split(line)
    if len(words) < 2:
        raise ValueError(f"usage: {ATTACH} PATH [caption]")
    path = Path(words[1]).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path, " ".join(words[2:])


def console_user(name: str | None) -> AgentKey:
    """``console:<name>``; the default name is the OS user's. ``ValueError`` (one line for the
    person) if the name cannot be one."""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "local"
    name = re.sub(r"\s+", "_", name.strip())
    if len(name) > MAX_USER_NAME:
        raise ValueError(f"--user: a name of at most {MAX_USER_NAME} characters, please")
    if not name.isprintable():
        raise ValueError("--user: the name may not hold control characters")
    return AgentKey("console", name or "local")


class ConsoleAdapter:
    name = "console"

    def __init__(
        self,
        runtime: AgentRuntime,
        clock: Clock,
        user: AgentKey,
        max_file_bytes: int = 20 * 2**20,
    ) -> None:
        self._runtime = runtime
        self._max_file_bytes = max_file_bytes
        self._clock = clock
        self._user = user
        self._export_dir = Path.cwd()  # where exported files are saved
        self._terminal: Terminal | None = None
        self._task: asyncio.Task[int] | None = None
        self._busy = False  # a message is being answered
        self._stopping = False

    async def start(self) -> None:
        self._terminal = _open_terminal()
        self._task = asyncio.create_task(self._chat(self._terminal))
        if self._terminal.interactive:
            self._terminal.note(
                f"Chatting as {self._user}. /help lists commands; Ctrl-D or Ctrl-C quits."
            )

    async def _chat(self, terminal: Terminal) -> int:
        try:
            while not self._stopping and not terminal.closed:
                try:
                    line = await terminal.read_line()
                except Interrupted:  # Ctrl-C at the prompt: nothing is being answered
                    return 0
                if line is None:
                    await self._answer_held_back(terminal)
                    return 0
                if line.strip():
                    await self._answer(terminal, line)
            return 0
        finally:
            terminal.close()

    async def _answer(self, terminal: Terminal, line: str) -> None:
        message = self._message(terminal, line)
        if message is None:
            return
        self._busy = True
        try:
            reply = await self._runtime.handle(message, self, deliver=self._deliver)
        except asyncio.CancelledError:
            terminal.note(STOPPED)
            raise
        finally:
            self._busy = False
        await self._show(terminal, reply)

    def _message(self, terminal: Terminal, line: str) -> InboundMessage | None:
        """The line as a message; ``/attach PATH [caption]`` with the file (None, after a
        line saying why, if it cannot be read)."""
        files: tuple[InboundFile, ...] = ()
        text = line
        if line.split(maxsplit=1)[0] == ATTACH:
            try:
                path, text = _attach_arguments(line)
                files = (read_file(path, self._max_file_bytes),)
            except (ValueError, OSError) as exc:
                terminal.show(f"Cannot attach: {exc}", ReplyKind.NOTICE)
                return None
        return InboundMessage(
            self._user,
            text,
            self._clock.now(),
            display_name=self._user.user_id,
            chat=ChatKind.PRIVATE,
            files=files,
        )

    async def notice(self, text: str) -> None:
        """A turn's notices (``ReplySink``), printed as they come."""
        if self._terminal is not None:
            self._terminal.show(text, ReplyKind.NOTICE)

    async def grow(self, text: str) -> None:
        """The answer as it is written (``ReplySink``), printed as it comes."""
        if self._terminal is not None:
            self._terminal.grow(text)

    async def _answer_held_back(self, terminal: Terminal) -> None:
        """At the end of input, lines held back by the flood limit are answered too, so piped
        input gets every answer before the bot exits."""
        try:
            tickets = await self._runtime.recover(self.name)
        except StorageError as exc:
            log.warning("cannot list held-back messages: %s", exc)
            return
        for ticket in tickets:
            if ticket.message.key == self._user:
                reply = await self._runtime.answer(ticket, self, deliver=self._deliver)
                await self._show(terminal, reply)

    async def _deliver(self, message: InboundMessage, reply: Reply) -> None:
        """A turn's reply, shown once written (streamed, only the rest follows); a turn that a
        killed process left unfinished is answered first."""
        if self._terminal is not None:
            await self._show(self._terminal, reply)

    @property
    def scope(self) -> DeliveryScope:
        return DeliveryScope(self.name, self._user.user_id)

    async def deliver(self, delivery: Delivery) -> bool:
        """A reminder, shown while the chat is open (in a terminal, above the prompt); False
        if there is nowhere to show it (not started, or the output went away)."""
        terminal = self._terminal
        if terminal is None or terminal.closed:
            return False
        await self._show(terminal, delivery.reply)
        return True

    async def _show(self, terminal: Terminal, reply: Reply) -> None:
        if reply.text.strip():
            terminal.show(reply.text, reply.kind)
        for attachment in reply.attachments:
            try:
                path = await asyncio.to_thread(save_private, self._export_dir, attachment)
            except OSError as exc:
                log.warning("could not save %s: %s", attachment.filename, exc)
                terminal.show(f"I couldn't save the file: {exc.strerror}.", ReplyKind.ERROR)
            else:
                terminal.show(f"(saved {path})", ReplyKind.NOTICE)

    async def finished(self) -> int:
        assert self._task is not None, "start() first"
        return await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop taking input and finish the answer being written (if any). Cancelling this
        call stops that answer too."""
        self._stopping = True
        if self._task is None or self._task.done():
            return
        if self._busy:
            assert self._terminal is not None
            self._terminal.note(STOPPING)
        else:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _open_terminal() -> Terminal:
    if sys.stdin.isatty() and sys.stdout.isatty():
        # Imported only here: piped runs (scripts, tests) never pay for prompt_toolkit and rich.
        from bots.console.interactive import InteractiveTerminal  # noqa: PLC0415

        return InteractiveTerminal()
    return PipedTerminal(asyncio.get_running_loop())


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 100


def save_private(folder: Path, attachment: Attachment) -> Path:
    """Write ``attachment`` into ``folder`` under a safe version of its name: readable by the
    owner only, never following a link and never replacing a file (``-1``, ``-2``, ... are
    added until a name is free)."""
    stem, dot, suffix = _UNSAFE.sub("_", attachment.filename).lstrip("._").rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    stem, suffix = (stem or "export")[:_MAX_NAME], f".{suffix[:16]}" if suffix else ""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for attempt in range(1000):
        path = folder / (f"{stem}-{attempt}{suffix}" if attempt else f"{stem}{suffix}")
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:  # a file or a link: leave it alone, take the next name
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(attachment.data)
        return path
    raise FileExistsError(17, "too many files with that name", str(folder))
